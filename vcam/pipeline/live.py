"""The live runner: a source, the stage kit and a sink on three threads, latest frame wins.

* ``step()`` runs one frame through every stage on the calling thread and loses nothing:
  the thread-free twin tests use.
* ``run(stop)`` runs three named threads (capture, matting, output) joined by
  :class:`LatestSlot` hand-offs, so a slow stage drops stale frames (counted) instead of
  adding latency. Errors in a thread stop the others and are re-raised on the calling thread.

Two alpha policies for ``run``:

* ``wait``: each frame goes capture → matting → output and is composited with its own
  alpha; latency is inference plus compositing.
* ``latest``: the output thread takes each captured frame at once and composites it with
  the newest alpha the matting thread has finished (:class:`NewestAlpha`; the matting thread
  works on the newest frame it can get). Latency is only compositing; the mask may trail fast
  motion by the inference time. ``stats`` records that age. An effect is never shown without
  an alpha: until the first alpha exists the output waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np

from vcam.frames import Frame
from vcam.pipeline.buffers import LatestSlot
from vcam.pipeline.stages import Matted, Stages
from vcam.pipeline.threads import Workers
from vcam.sinks import Sink, StopRequested
from vcam.sources import Source
from vcam.sources.pacing import bind_stop

__all__ = ["ALPHA_POLICIES", "LiveRunner", "NewestAlpha"]

_POLL_S = 0.1
_JOIN_S = 5.0
ALPHA_POLICIES = ("wait", "latest")


class NewestAlpha:
    """The newest finished :class:`Matted` (policy ``latest``); readers may wait for one
    that carries an alpha. Beside :class:`LatestSlot`, the other hand-off policy: nothing is
    taken out, every reader sees the newest."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Matted | None = None
        self.closed = False

    def put(self, item: Matted) -> None:
        with self._cond:
            self._item = item
            self._cond.notify_all()

    def wait_for_alpha(self, timeout: float) -> Matted | None:
        with self._cond:
            if (self._item is None or self._item.alpha is None) and not self.closed:
                self._cond.wait(timeout)
            item = self._item
            return item if item is not None and item.alpha is not None else None

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class LiveRunner:
    """``source`` → ``stages`` → ``sink``, live: ``step()`` or ``run(stop)``."""

    def __init__(
        self, source: Source, stages: Stages, sink: Sink, *, alpha_policy: str = "wait",
        overlay: Callable[[np.ndarray, Frame], np.ndarray] | None = None,
    ) -> None:
        """``overlay(image, frame)``, when given, draws on each finished picture before the
        sink gets it (the test pattern's label and counter, after the effect)."""
        if alpha_policy not in ALPHA_POLICIES:
            raise ValueError(f"alpha_policy must be one of {ALPHA_POLICIES}, got {alpha_policy!r}")
        self.alpha_policy = alpha_policy
        self.overlay = overlay
        self.stages = stages
        self.sink = sink
        self._source = source
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None  # the stop of the run under way

    @property
    def source(self) -> Source:
        with self._lock:
            return self._source

    def set_source(self, source: Source) -> None:
        """Read from ``source`` from the next frame on (a new scene: the matting state starts
        over); the old source is closed. The run's stop is bound to it (see :meth:`run`)."""
        if self._stop is not None:
            bind_stop(source, self._stop)
        with self._lock:
            old, self._source = self._source, source
        self.stages.request_reset()
        old.close()

    # -- the ends of the line ----------------------------------------------------------------

    def _read(self) -> Frame | None:
        clock, stats = self.stages.clock, self.stages.stats
        t0 = clock()
        frame = self.source.read()
        if frame is not None:
            stats.stage("capture", clock() - t0)
            stats.frame_in()
        return frame

    def _send(self, frame: Frame, image: np.ndarray) -> None:
        clock, stats = self.stages.clock, self.stages.stats
        t0 = clock()
        if self.overlay is not None:
            image = self.overlay(image, frame)
        self.sink.send(image, frame.pts)
        stats.stage("sink", clock() - t0)
        stats.frame_out(frame.timestamp)

    def _with_newest_alpha(self, frame: Frame, newest: NewestAlpha, stop: threading.Event) -> Matted | None:
        """``frame`` with the newest finished alpha (policy ``latest``); None to skip it."""
        if not self.stages.wants_alpha(frame):
            return Matted(frame, None)
        while not stop.is_set():
            done = newest.wait_for_alpha(_POLL_S)
            if done is not None:
                self.stages.stats.alpha_age(frame.timestamp - done.frame.timestamp)
                # (without the model's picture: that is of an older frame than this one)
                return Matted(frame, done.alpha)
            if newest.closed:
                return None
        return None

    # -- drivers -----------------------------------------------------------------------------

    def step(self) -> bool:
        """Process one frame on this thread. Returns False at the end of the source."""
        frame = self._read()
        if frame is None:
            return False
        st = self.stages
        prepared = st.prepare(frame)
        self._send(prepared, st.render(st.matte(prepared)))
        return True

    def run(self, stop: threading.Event, duration: float | None = None) -> str:
        """Run the three threads until ``stop`` is set, ``duration`` seconds pass, the source
        ends or the sink asks to stop. Returns why it stopped ("stopped", "duration", "end of
        source", "sink"). Re-raises the first error of any stage thread.

        ``stop`` is bound to the source (``stop_on``, see :mod:`vcam.sources`): a source
        waiting for its next frame (a low frame rate, a gap in a file) returns as soon as it
        is set, so the capture thread never outlives the stop by a frame period.
        """
        st = self.stages
        latest = self.alpha_policy == "latest"
        # The stages already run in parallel; OpenCV's own worker threads on top only add
        # hand-offs: 720p CPU per frame 1.29 -> 1.23 x the bare model (docs/performance.md).
        cv2.setNumThreads(1)
        to_matte: LatestSlot[Frame] = LatestSlot()
        to_output: LatestSlot[Matted] = LatestSlot()
        newest = NewestAlpha()
        reason: list[str] = []
        self._stop = stop
        with self._lock:
            bind_stop(self._source, stop)

        def capture() -> None:
            while not stop.is_set():
                frame = self._read()
                if frame is None:
                    reason.append("end of source")
                    break
                if stop.is_set():  # a wait the stop cut short: this frame came early, drop it
                    break
                prepared = st.prepare(frame)
                replaced = to_matte.put(prepared)
                if latest:
                    replaced = to_output.put(Matted(prepared, None))
                if replaced:
                    st.stats.add_dropped()
            to_matte.close()
            if latest:
                to_output.close()

        def matting() -> None:
            while not stop.is_set():
                frame = to_matte.get(_POLL_S)
                if frame is None:
                    if to_matte.closed:
                        break
                    continue
                matted = st.matte(frame)
                if latest:
                    newest.put(matted)
                elif to_output.put(matted):
                    st.stats.add_dropped()
            newest.close()
            if not latest:
                to_output.close()

        def output() -> None:
            try:
                while not stop.is_set():
                    item = to_output.get(_POLL_S)
                    if item is None:
                        if to_output.closed:
                            break
                        continue
                    if latest:
                        item = self._with_newest_alpha(item.frame, newest, stop)
                        if item is None:
                            st.stats.add_dropped()  # no alpha for it before the stop
                            continue
                    self._send(item.frame, st.render(item))
            except StopRequested:
                reason.append("sink")

        sink_stop = getattr(self.sink, "stop_requested", None)  # optional (see vcam.sinks)
        workers = Workers(stop, join_s=_JOIN_S)
        deadline = None if duration is None else st.clock() + duration
        workers.start("vcam-capture", capture)
        workers.start("vcam-matting", matting)
        out = workers.start("vcam-output", output)
        try:
            while not stop.is_set():
                # At the end of a finite source the output thread drains what is left first.
                if workers.errors or "sink" in reason or not out.is_alive():
                    break
                if sink_stop is not None and sink_stop():
                    reason.append("sink")
                    break
                if deadline is not None and st.clock() >= deadline:
                    reason.append("duration")
                    break
                workers.ended.wait(_POLL_S)
                workers.ended.clear()
        finally:
            stop.set()
            to_matte.close()
            to_output.close()
            newest.close()
            workers.join()
            # Frames read but still in a hand-off or a stage when the run stopped were
            # dropped too: so frames_in == frames_out + frames_dropped at the end.
            stats = st.stats
            left = stats.frames_in - stats.frames_out - stats.dropped
            if left > 0:
                stats.add_dropped(left)
        workers.raise_first()
        return reason[0] if reason else "stopped"
