"""Exponential backoff for reopening a device that failed (camera, virtual camera)."""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """When to try again: ``min_s`` after the failure, then each wait doubled up to ``max_s``.

    Times are the caller's clock readings (seconds); the object keeps no clock of its own.
    """

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s, self.max_s = min_s, max_s
        self.delay = min_s
        self.next_try = 0.0

    def failed(self, now: float) -> None:
        """The device just failed: the first retry is ``min_s`` from ``now``."""
        self.delay = self.min_s
        self.next_try = now + self.delay

    def due(self, now: float) -> bool:
        """Whether a retry may be made at ``now``."""
        return now >= self.next_try

    def retry_failed(self, now: float) -> float:
        """A retry made at ``now`` failed: double the wait (up to ``max_s``); returns it."""
        self.delay = min(self.delay * 2, self.max_s)
        self.next_try = now + self.delay
        return self.delay
