"""Progress of file mode on stderr: a bar per file and one over the whole batch (tqdm)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from vcam.files.process import FrameProgress

__all__ = ["BatchDisplay", "frame_progress", "one_bar"]


class BatchDisplay:
    """Progress on stderr (tqdm): one bar per file being processed (frames, frames/s, ETA)
    and, for several files, an overall bar over the frames of all of them. Shown only when
    ``enabled`` and stderr is a terminal."""

    def __init__(self, total_frames: int | None, files: int, overall: bool = True, enabled: bool = True) -> None:
        from functools import partial

        from tqdm import tqdm

        # disable=None: no bars when stderr is not a terminal (a log file gets no redraw spam)
        self._tqdm = partial(tqdm, disable=None if enabled else True, dynamic_ncols=True, file=sys.stderr)
        self._write = tqdm.write
        self._lock = threading.Lock()
        self._overall = (
            self._tqdm(total=total_frames, unit="frame", desc=f"all {files} files", position=0) if overall else None
        )
        self._bars: dict[int, Any] = {}
        self._expected: dict[int, int] = {}
        self._done: dict[int, int] = {}
        self._slots: dict[int, int] = {}

    def start(self, key: int, name: str, total: int | None) -> None:
        with self._lock:
            slot = min(set(range(1, len(self._slots) + 2)) - set(self._slots.values()))
            self._slots[key] = slot
            pos = slot if self._overall is not None else 0
            self._bars[key] = self._tqdm(total=total, unit="frame", desc=name, position=pos, leave=self._overall is None)
            self._expected[key] = total or 0
            self._done[key] = 0

    def tick(self, key: int, n: int) -> None:
        with self._lock:
            bar = self._bars.get(key)
            if bar is not None:
                bar.update(n)
                self._done[key] += n
            if self._overall is not None:
                self._overall.update(n)

    def finish(self, key: int) -> None:
        """The file is done (or failed): frames it did not process leave the overall total."""
        with self._lock:
            bar = self._bars.pop(key, None)
            self._slots.pop(key, None)
            expected, done = self._expected.pop(key, 0), self._done.pop(key, 0)
            if bar is None:
                return
            if self._overall is not None and self._overall.total is not None and done < expected:
                self._overall.total -= expected - done
                self._overall.refresh()
            bar.close()

    def write(self, line: str, err: bool = False) -> None:
        with self._lock:
            self._write(line, file=sys.stderr if err else sys.stdout)

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
            if self._overall is not None:
                self._overall.close()


def frame_progress(display: BatchDisplay, key: int, name: str) -> FrameProgress:
    def factory(total: int | None) -> Callable[[int], None]:
        display.start(key, name, total)
        return lambda n: display.tick(key, n)

    return factory


def one_bar(display: BatchDisplay, name: str, total: int | None) -> Callable[[int], None]:
    """The bar of a lone file (key 0)."""
    display.start(0, name, total)
    return lambda n: display.tick(0, n)
