"""One-slot "latest wins" hand-off between threads, counting what it replaced."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

__all__ = ["LatestSlot"]

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item. ``put`` replaces an unread item (counted in ``dropped``);
    ``get`` waits for an item and takes it. A slow consumer therefore always gets the
    newest item and never a backlog of stale ones.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self.dropped = 0
        self.closed = False

    def put(self, item: T) -> bool:
        """Store ``item``; returns True when it replaced one that was never read."""
        with self._cond:
            replaced = self._full
            if replaced:
                self.dropped += 1
            self._item, self._full = item, True
            self._cond.notify()
            return replaced

    def get(self, timeout: float | None = None) -> T | None:
        """Take the item, waiting up to ``timeout`` s; None on time-out or when closed and empty."""
        with self._cond:
            if not self._full and not self.closed:
                self._cond.wait(timeout)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Wake any waiting ``get``; after the last item is taken, ``get`` returns None at once."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()
