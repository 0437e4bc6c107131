"""Thread-safe pipeline counters and timings, summarised as the ``--stats-json`` object."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

__all__ = ["STAGES", "Ring", "Stats"]

STAGES = ("capture", "prepare", "inference", "refine", "enhance", "composite", "sink")
_KEEP = 65_536  # per series: the last ~36 minutes at 30 fps; memory is fixed at start


class Ring:
    """A fixed-size float64 ring buffer of the most recent ``capacity`` values (not thread-safe)."""

    def __init__(self, capacity: int = _KEEP) -> None:
        self._buf = np.zeros(capacity, np.float64)
        self._n = 0

    def append(self, value: float) -> None:
        self._buf[self._n % self._buf.size] = value
        self._n += 1

    def __len__(self) -> int:
        return min(self._n, self._buf.size)

    def values(self) -> np.ndarray:
        """The kept values, oldest first (a copy)."""
        if self._n <= self._buf.size:
            return self._buf[: self._n].copy()
        i = self._n % self._buf.size
        return np.concatenate((self._buf[i:], self._buf[:i]))


class Stats:
    """Counts frames in/out/dropped and records per-frame latency and per-stage times (ms)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0
        self._latency = Ring()
        self._stage = {s: Ring() for s in STAGES}
        self._out_times = Ring()
        self._alpha_age = Ring()
        self.started = clock()

    def frame_in(self) -> None:
        with self._lock:
            self.frames_in += 1

    def frame_out(self, capture_ts: float) -> None:
        now = self._clock()
        with self._lock:
            self.frames_out += 1
            self._latency.append((now - capture_ts) * 1000.0)
            self._out_times.append(now)

    def stage(self, name: str, seconds: float) -> None:
        with self._lock:
            self._stage[name].append(seconds * 1000.0)

    def alpha_age(self, seconds: float) -> None:
        """How much older the frame the alpha came from is than the frame it is applied to."""
        with self._lock:
            self._alpha_age.append(seconds * 1000.0)

    def add_dropped(self, n: int = 1) -> None:
        with self._lock:
            self.dropped += n

    def fps(self) -> float:
        """Output frames per second over the whole run (first to last output frame)."""
        with self._lock:
            t = self._out_times.values()
        if len(t) < 2 or t[-1] <= t[0]:
            return 0.0
        return float((len(t) - 1) / (t[-1] - t[0]))

    def recent_fps(self, window_s: float = 2.0) -> float:
        """Output frames per second over the last ``window_s`` seconds."""
        now = self._clock()
        with self._lock:
            t = self._out_times.values()
        t = t[now - t <= window_s]
        if len(t) < 2 or t[-1] <= t[0]:
            return 0.0
        return float((len(t) - 1) / (t[-1] - t[0]))

    def latency(self) -> dict[str, float | None]:
        """Capture → sink hand-off, ms: p50, p95, p99 (None before the first frame)."""
        with self._lock:
            return _percentiles(self._latency)

    def alpha_age_ms(self) -> dict[str, float | None]:
        """Age of the alpha used for each output frame, ms (policy ``latest`` only)."""
        with self._lock:
            return _percentiles(self._alpha_age)


    def stage_ms(self) -> dict[str, float]:
        with self._lock:
            return {k: round(float(np.median(v.values())), 3) for k, v in self._stage.items() if len(v)}

    def summary(self) -> dict[str, object]:
        """The counters and timings as a JSON-ready dict."""
        with self._lock:
            counts = {"frames_in": self.frames_in, "frames_out": self.frames_out, "frames_dropped": self.dropped}
        out: dict[str, object] = {
            **counts,
            "fps": round(self.fps(), 3),
            "latency_ms": self.latency(),
            "stage_ms": self.stage_ms(),
            "wall_s": round(self._clock() - self.started, 3),
        }
        if len(self._alpha_age):
            out["alpha_age_ms"] = self.alpha_age_ms()
        return out


def _percentiles(values: Ring) -> dict[str, float | None]:
    lat = values.values()
    if lat.size == 0:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3)}
