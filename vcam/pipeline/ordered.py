"""The ordered runner: stages on threads joined by bounded queues that lose nothing.

File mode's backpressure policy: a full queue makes its producer wait, so every frame goes
through every stage in order (the live runner instead keeps only the newest frame,
:mod:`vcam.pipeline.live`).
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from typing import Any

from vcam.pipeline.threads import Workers

__all__ = ["run_ordered"]

_POLL_S = 0.1
_JOIN_S = 10.0
_END: Any = object()  # end-of-stream marker passed down the queues


def run_ordered(
    produce: Callable[[], Any],
    stages: Sequence[tuple[str, Callable[[Any], Any]]],
    queue_size: int,
    report: Callable[[], None],
) -> None:
    """``produce`` on thread ``vcam-decode`` and each stage on ``vcam-<name>``, joined by
    queues of ``queue_size``. Nothing is dropped: a full queue makes its producer wait. The
    calling thread waits, calling ``report`` every 0.1 s; the first error of any thread, or
    an interrupt of the calling thread (Ctrl-C, ``report`` raising), stops every thread
    before it is raised here."""
    workers = Workers(join_s=_JOIN_S)
    stop = workers.stop
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=queue_size) for _ in stages]

    def put(q: queue.Queue[Any], item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(q: queue.Queue[Any]) -> Any:
        while not stop.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _END

    def producer() -> None:
        while not stop.is_set():
            item = produce()
            if not put(queues[0], _END if item is None else item):
                return
            if item is None:
                return

    def worker(i: int, fn: Callable[[Any], Any]) -> Callable[[], None]:
        def body() -> None:
            out = queues[i + 1] if i + 1 < len(queues) else None
            while (item := get(queues[i])) is not _END:
                result = fn(item)
                if out is not None and not put(out, result):
                    return
            if out is not None:
                put(out, _END)

        return body

    try:
        # started inside the try: a stop signal between two starts must still stop and join
        # the ones started (else they go on decoding from a file that is being closed: -11)
        last = workers.start("vcam-decode", producer)
        for i, (name, fn) in enumerate(stages):
            last = workers.start(f"vcam-{name}", worker(i, fn))
        while last.is_alive() and not stop.is_set():
            last.join(_POLL_S)
            report()
    finally:
        workers.join()
    workers.raise_first()
