"""The pipeline: one object, two ways to drive it.

* ``step()`` runs one frame through every stage on the calling thread and loses nothing:
  file mode and tests use it.
* ``run(stop)`` runs three named threads (capture, matting, output) joined by
  :class:`LatestSlot` hand-offs, so a slow stage drops stale frames (counted) instead of
  adding latency: live mode uses it. Errors in a thread stop the others and are re-raised
  on the calling thread.

Two alpha policies for ``run``:

* ``wait``: each frame goes capture → matting → output and is composited with its own
  alpha; latency is inference plus compositing.
* ``latest``: the output thread takes each captured frame at once and composites it with
  the newest alpha the matting thread has finished (the matting thread works on the newest
  frame it can get). Latency is only compositing; the mask may trail fast motion by the
  inference time. ``stats`` records that age. An effect is never shown without an alpha:
  until the first alpha exists the output waits.

Recurrent-state rules: the engine is reset when the source changes, when the frame size
changes, when matting resumes after frames that were not matted (mode ``off``, pause), on a
scene cut (:mod:`vcam.pipeline.scenecut`), and a new engine starts with a fresh state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from vcam.compositing import Compositor, LowRes
from vcam.compositing.refine import BilinearRefiner, Refiner
from vcam.frames import Frame, cover_fit
from vcam.matting import Matter
from vcam.pipeline.buffers import LatestSlot
from vcam.pipeline.heap import trim_heap
from vcam.pipeline.scenecut import SceneCutDetector
from vcam.pipeline.stats import Stats
from vcam.pipeline.threads import join_threads, name_native_thread
from vcam.sinks import Sink, StopRequested
from vcam.sources import Source
from vcam.sources.pacing import bind_stop

__all__ = ["ALPHA_POLICIES", "Matted", "Pipeline"]

log = logging.getLogger(__name__)
_POLL_S = 0.1
_JOIN_S = 5.0
ALPHA_POLICIES = ("wait", "latest")


@dataclass(slots=True)
class Matted:
    """A prepared frame and its alpha at model size (None when the compositor needs none),
    with the model's input picture when there is an alpha."""

    frame: Frame
    alpha: np.ndarray | None
    small: np.ndarray | None = None


class Pipeline:
    """source → prepare (fit to output size, mirror) → matting → refine + composite → sink.

    ``on_alpha(frame, alpha)`` if given is called with every output-size alpha (uint8 0..255),
    for example to write mattes in file mode. ``refiner`` brings model-size alpha to output
    size (bilinear by default); ``scene_cuts`` resets the engine on an abrupt picture change.
    """

    def __init__(
        self,
        source: Source,
        engine: Matter,
        compositor: Compositor,
        sink: Sink,
        *,
        output_size: tuple[int, int],
        mirror: bool = False,
        clock: Callable[[], float] = time.monotonic,
        on_alpha: Callable[[Frame, np.ndarray], None] | None = None,
        alpha_policy: str = "wait",
        refiner: Refiner | None = None,
        scene_cuts: bool = True,
    ) -> None:
        if alpha_policy not in ALPHA_POLICIES:
            raise ValueError(f"alpha_policy must be one of {ALPHA_POLICIES}, got {alpha_policy!r}")
        self.alpha_policy = alpha_policy
        self.source, self.engine, self.compositor, self.sink = source, engine, compositor, sink
        self.output_size = output_size
        self.mirror = mirror
        self.clock = clock
        self.on_alpha = on_alpha
        self.refiner: Refiner = refiner or BilinearRefiner()
        self.scene_cuts = SceneCutDetector() if scene_cuts else None
        self.stats = Stats(clock)
        self._lock = threading.Lock()
        self._last_size: tuple[int, int] | None = None
        self._matting_active = False
        self._paused = False
        self._engine_in_use: object = engine
        self._stop: threading.Event | None = None  # the stop of the run under way

    # -- live changes (thread-safe; take effect on the next frame) --------------------------

    def set_compositor(self, compositor: Compositor) -> None:
        with self._lock:
            old, self.compositor = self.compositor, compositor
        close = getattr(old, "close", None)
        if old is not compositor and close is not None:
            close()

    def set_mirror(self, mirror: bool) -> None:
        with self._lock:
            self.mirror = mirror

    def set_engine(self, engine: Matter) -> None:
        with self._lock:
            self.engine = engine

    def set_source(self, source: Source) -> None:
        if self._stop is not None:
            bind_stop(source, self._stop)
        with self._lock:
            old, self.source = self.source, source
            self.engine.reset()
        old.close()

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._paused = paused

    @property
    def paused(self) -> bool:
        return self._paused

    # -- the stages --------------------------------------------------------------------------

    def _read(self) -> Frame | None:
        t0 = self.clock()
        frame = self.source.read()
        if frame is not None:
            self.stats.stage("capture", self.clock() - t0)
            self.stats.frame_in()
        return frame

    def prepare(self, frame: Frame) -> Frame:
        """Fit the picture to the output size (cover, never stretched) and mirror it if asked."""
        t0 = self.clock()
        img = frame.image
        if (img.shape[1], img.shape[0]) != self.output_size:
            img = cover_fit(img, self.output_size)
        if self.mirror and not frame.placeholder:
            img = cv2.flip(img, 1)
        frame = Frame(img, frame.index, frame.timestamp, frame.pts, frame.restart, frame.placeholder)
        self.stats.stage("prepare", self.clock() - t0)
        return frame

    def matte(self, frame: Frame) -> Matted:
        """Run the engine when the compositor needs alpha, applying the state-reset rules."""
        with self._lock:
            compositor, engine, paused = self.compositor, self.engine, self._paused
        if engine is not self._engine_in_use:
            # the previous engine is no longer used by anyone: give its memory back
            self._engine_in_use = engine
            trim_heap()
        if not compositor.needs_alpha or paused or frame.placeholder:
            self._matting_active = False
            return Matted(frame, None)
        size = frame.size
        t0 = self.clock()
        small = engine.shrink(frame.image)  # shared by the scene-cut check, the model and the blur
        cut = self.scene_cuts is not None and self.scene_cuts.update(small)
        if cut:
            log.debug("scene cut at frame %d: resetting the matting state", frame.index)
        if not self._matting_active or size != self._last_size or frame.restart or cut:
            engine.reset()
        self._matting_active, self._last_size = True, size
        alpha = engine.infer(small)
        self.stats.stage("inference", self.clock() - t0)
        return Matted(frame, alpha, small)

    def render(self, item: Matted) -> np.ndarray:
        """Upsample the alpha to the picture and composite; pass through when there is no alpha."""
        with self._lock:
            compositor, paused = self.compositor, self._paused
        frame = item.frame
        if paused or item.alpha is None or not compositor.needs_alpha or frame.placeholder:
            # also when the mode changed between matting and rendering: this one frame as is
            return frame.image
        t0 = self.clock()
        full = self.refiner(item.alpha, frame.image)
        t1 = self.clock()
        self.stats.stage("refine", t1 - t0)
        if self.on_alpha is not None:
            self.on_alpha(frame, full)
        low = LowRes(item.small, item.alpha) if item.small is not None else None
        out = compositor(frame.image, full, low)
        self.stats.stage("composite", self.clock() - t1)
        return out

    def _with_newest_alpha(self, frame: Frame, newest: _NewestAlpha, stop: threading.Event) -> Matted | None:
        """``frame`` with the newest finished alpha (policy ``latest``); None to skip it."""
        with self._lock:
            needs = self.compositor.needs_alpha and not self._paused and not frame.placeholder
        if not needs:
            return Matted(frame, None)
        while not stop.is_set():
            done = newest.wait_for_alpha(_POLL_S)
            if done is not None:
                self.stats.alpha_age(frame.timestamp - done.frame.timestamp)
                # (without the model's picture: that is of an older frame than this one)
                return Matted(frame, done.alpha)
            if newest.closed:
                return None
        return None

    def _send(self, frame: Frame, image: np.ndarray) -> None:
        t0 = self.clock()
        self.sink.send(image, frame.pts)
        self.stats.stage("sink", self.clock() - t0)
        self.stats.frame_out(frame.timestamp)

    # -- drivers -----------------------------------------------------------------------------

    def step(self) -> bool:
        """Process one frame on this thread. Returns False at the end of the source."""
        frame = self._read()
        if frame is None:
            return False
        prepared = self.prepare(frame)
        self._send(prepared, self.render(self.matte(prepared)))
        return True

    def run(self, stop: threading.Event, duration: float | None = None) -> str:
        """Run the threaded live pipeline until ``stop`` is set, ``duration`` seconds pass, the
        source ends or the sink asks to stop. Returns why it stopped ("stopped", "duration",
        "end of source", "sink"). Re-raises the first error of any stage thread.

        ``stop`` is bound to the source (``stop_on``, see :mod:`vcam.sources`): a source
        waiting for its next frame (a low frame rate, a gap in a file) returns as soon as it
        is set, so the capture thread never outlives the stop by a frame period.
        """
        latest = self.alpha_policy == "latest"
        # The stages already run in parallel; OpenCV's own worker threads on top only add
        # hand-offs: 720p CPU per frame 1.29 -> 1.23 x the bare model (docs/performance.md).
        cv2.setNumThreads(1)
        to_matte: LatestSlot[Frame] = LatestSlot()
        to_output: LatestSlot[Matted] = LatestSlot()
        newest = _NewestAlpha()
        errors: list[BaseException] = []
        reason: list[str] = []
        done = threading.Event()
        self._stop = stop
        with self._lock:
            bind_stop(self.source, stop)

        def guarded(body: Callable[[], None]) -> Callable[[], None]:
            def target() -> None:
                name_native_thread(threading.current_thread().name)
                try:
                    body()
                except StopRequested:
                    reason.append("sink")
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    errors.append(exc)
                finally:
                    done.set()

            return target

        def capture() -> None:
            while not stop.is_set():
                frame = self._read()
                if frame is None:
                    reason.append("end of source")
                    break
                if stop.is_set():  # a wait the stop cut short: this frame came early, drop it
                    break
                prepared = self.prepare(frame)
                replaced = to_matte.put(prepared)
                if latest:
                    replaced = to_output.put(Matted(prepared, None))
                if replaced:
                    self.stats.add_dropped()
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
                matted = self.matte(frame)
                if latest:
                    newest.put(matted)
                elif to_output.put(matted):
                    self.stats.add_dropped()
            newest.close()
            if not latest:
                to_output.close()

        def output() -> None:
            while not stop.is_set():
                item = to_output.get(_POLL_S)
                if item is None:
                    if to_output.closed:
                        break
                    continue
                if latest:
                    item = self._with_newest_alpha(item.frame, newest, stop)
                    if item is None:
                        continue
                self._send(item.frame, self.render(item))

        threads = [
            threading.Thread(target=guarded(capture), name="vcam-capture", daemon=True),
            threading.Thread(target=guarded(matting), name="vcam-matting", daemon=True),
            threading.Thread(target=guarded(output), name="vcam-output", daemon=True),
        ]
        deadline = None if duration is None else self.clock() + duration
        for t in threads:
            t.start()
        try:
            while not stop.is_set():
                # At the end of a finite source the output thread drains what is left first.
                if errors or "sink" in reason or not threads[2].is_alive():
                    break
                if deadline is not None and self.clock() >= deadline:
                    reason.append("duration")
                    break
                done.wait(_POLL_S)
                done.clear()
        finally:
            stop.set()
            to_matte.close()
            to_output.close()
            newest.close()
            join_threads(threads, _JOIN_S)
        if errors:
            raise errors[0]
        return reason[0] if reason else "stopped"


class _NewestAlpha:
    """The newest finished :class:`Matted` (policy ``latest``); readers may wait for one
    that carries an alpha."""

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
