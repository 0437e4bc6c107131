"""The stage kit: the per-frame work both runners share, with no source, no sink, no thread.

* :meth:`Stages.prepare`: fit the picture to the output size (cover, never stretched), mirror.
* :meth:`Stages.matte`: the engine's alpha when the compositor needs one, with the
  recurrent-state rules below.
* :meth:`Stages.render`: alpha up to the picture's size (the refiner), the matte-driven
  picture effects (auto-framing, low-light: :mod:`vcam.compositing.enhance`) and composite.

Live mode drives them on three threads (:mod:`vcam.pipeline.live`), file mode in order on
its own threads (:mod:`vcam.pipeline.ordered`, :mod:`vcam.files.process`).

Recurrent-state rules: the engine is reset when the frame size changes, when matting resumes
after frames that were not matted (mode ``off``, held), at a frame marked ``restart``, on a
scene cut (:mod:`vcam.pipeline.scenecut`), and when :meth:`Stages.request_reset` was called
(a new source). A new engine starts with a fresh state. Every reset happens on the thread that
calls :meth:`matte`, the only one that uses the engine: other threads only ask for it.

Still frames (``still`` > 0, :mod:`vcam.pipeline.still`): while the model's view of the
picture has not moved, the last alpha is reused and the model does not run (the state does
not advance). Warm-up (``warmup`` = N > 0, file mode): the first frame after every reset is
run N more times, so it gets the matte of a settled state instead of a cold one.

The setters are thread-safe and take effect on the next frame.
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
from vcam.compositing.enhance import Enhancer, refine_region
from vcam.compositing.jit import load_all as load_compiled_loops
from vcam.compositing.refine import BilinearRefiner, Refiner
from vcam.frames import Frame, contain_fit, cover_fit
from vcam.matting import Matter
from vcam.pipeline.heap import trim_heap
from vcam.pipeline.scenecut import SceneCutDetector
from vcam.pipeline.stats import Stats
from vcam.pipeline.still import StillGate

__all__ = ["Matted", "Stages"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Matted:
    """A prepared frame and its alpha at model size (None when the compositor needs none),
    with the model's input picture when there is an alpha."""

    frame: Frame
    alpha: np.ndarray | None
    small: np.ndarray | None = None


class Stages:
    """prepare (fit to output size, mirror) → matte → render (refine + composite).

    ``on_alpha(frame, alpha)`` if given is called with every output-size alpha (uint8 0..255),
    for example to write mattes in file mode. ``refiner`` brings model-size alpha to output
    size (bilinear by default); ``scene_cuts`` resets the engine on an abrupt picture change.
    ``stats`` records the time of each stage (the runners add capture and sink). ``still``:
    the still-frame threshold (0: always run the model); ``warmup``: extra model runs on the
    first frame after a reset (module notes). ``enhancer`` (framing, light; both off unless
    given) works on each matted frame before it is composited.
    """

    def __init__(
        self,
        engine: Matter,
        compositor: Compositor,
        *,
        output_size: tuple[int, int],
        mirror: bool = False,
        clock: Callable[[], float] = time.monotonic,
        on_alpha: Callable[[Frame, np.ndarray], None] | None = None,
        refiner: Refiner | None = None,
        scene_cuts: bool = True,
        fit: str = "cover",
        still: float = 0.0,
        warmup: int = 0,
        enhancer: Enhancer | None = None,
    ) -> None:
        self._engine, self._compositor = engine, compositor
        self.output_size = output_size
        # a picture of another shape: "cover" (scale and crop: cameras) or "contain" (letterbox: files)
        self._fit = contain_fit if fit == "contain" else cover_fit
        self.mirror = mirror
        self.clock = clock
        self.on_alpha = on_alpha
        self.refiner: Refiner = refiner or BilinearRefiner()
        self.scene_cuts = SceneCutDetector() if scene_cuts else None
        self.still = StillGate(still) if still > 0 else None
        self.warmup = warmup
        self.enhancer = enhancer or Enhancer(output_size)  # framing and light, off by default
        self.stats = Stats(clock)
        self._lock = threading.Lock()
        self._last_size: tuple[int, int] | None = None
        self._matting_active = False
        self._held = False
        self._reset_requested = False
        self._engine_in_use: object = engine
        # the compositing loops (numba) load here, after the run's inputs were checked (so bad
        # input fails without numba) and before the first frame (so it does not wait for them)
        load_compiled_loops()

    # -- what runs now (read by the runners, the controller and the stats) ------------------

    @property
    def engine(self) -> Matter:
        with self._lock:
            return self._engine

    @property
    def compositor(self) -> Compositor:
        with self._lock:
            return self._compositor

    @property
    def held(self) -> bool:
        with self._lock:
            return self._held

    # -- live changes (thread-safe; take effect on the next frame) --------------------------

    def set_compositor(self, compositor: Compositor) -> None:
        """Use ``compositor`` from the next frame on; the one it replaces is closed."""
        with self._lock:
            old, self._compositor = self._compositor, compositor
        close = getattr(old, "close", None)
        if old is not compositor and close is not None:
            close()

    def set_mirror(self, mirror: bool) -> None:
        with self._lock:
            self.mirror = mirror

    def set_engine(self, engine: Matter) -> None:
        """Use ``engine`` from the next frame on (with its own fresh state)."""
        with self._lock:
            self._engine = engine

    def set_held(self, held: bool) -> None:
        """Held (the user paused, nobody watches, or the virtual camera is down): frames pass
        through as they are and nothing is matted; matting resumes with a fresh state."""
        with self._lock:
            self._held = held

    def request_reset(self) -> None:
        """Ask for a fresh recurrent state before the next matted frame (from any thread: the
        reset itself happens on the thread that runs :meth:`matte`)."""
        with self._lock:
            self._reset_requested = True

    # -- the stages --------------------------------------------------------------------------

    def wants_alpha(self, frame: Frame) -> bool:
        """Whether ``frame`` is composited with an alpha now (not off, not held, not a placeholder)."""
        with self._lock:
            return self._compositor.needs_alpha and not self._held and not frame.placeholder

    def prepare(self, frame: Frame) -> Frame:
        """Fit the picture to the output size (cover or contain, never stretched) and mirror it if asked."""
        t0 = self.clock()
        img = frame.image
        if (img.shape[1], img.shape[0]) != self.output_size:
            img = self._fit(img, self.output_size)
        if self.mirror and not frame.placeholder:
            img = cv2.flip(img, 1)
        frame = Frame(img, frame.index, frame.timestamp, frame.pts, frame.restart, frame.placeholder)
        self.stats.stage("prepare", self.clock() - t0)
        return frame

    def matte(self, frame: Frame) -> Matted:
        """Run the engine when the compositor needs alpha, applying the state-reset rules."""
        with self._lock:
            compositor, engine, held = self._compositor, self._engine, self._held
            requested, self._reset_requested = self._reset_requested, False
        if engine is not self._engine_in_use:
            # the previous engine is no longer used by anyone: give its memory back
            self._engine_in_use = engine
            trim_heap()
            if self.still is not None:
                self.still.reset()  # the last alpha came from the previous engine
        if not compositor.needs_alpha or held or frame.placeholder:
            self._matting_active = False
            return Matted(frame, None)
        size = frame.size
        t0 = self.clock()
        small = engine.shrink(frame.image)  # shared by the scene-cut check, the model and the blur
        cut = self.scene_cuts is not None and self.scene_cuts.update(small)
        if cut:
            log.debug("scene cut at frame %d: resetting the matting state", frame.index)
        fresh = not self._matting_active or size != self._last_size or frame.restart or cut or requested
        if fresh:
            engine.reset()
            if self.still is not None:
                self.still.reset()
        self._matting_active, self._last_size = True, size
        alpha = self.still.reuse(small) if self.still is not None else None
        if alpha is not None:
            self.stats.stage("inference", self.clock() - t0)  # the matting step's time, model or not
            return Matted(frame, alpha, small)
        alpha = engine.infer(small)
        for _ in range(self.warmup if fresh else 0):
            alpha = engine.infer(small)
        if self.still is not None:
            self.still.record(alpha)
        self.stats.stage("inference", self.clock() - t0)
        return Matted(frame, alpha, small)

    def render(self, item: Matted) -> np.ndarray:
        """Upsample the alpha to the picture and composite; pass through when there is no alpha."""
        with self._lock:
            compositor, held = self._compositor, self._held
        frame = item.frame
        if held or item.alpha is None or not compositor.needs_alpha or frame.placeholder:
            # also when the mode changed between matting and rendering: this one frame as is
            return frame.image
        t0 = self.clock()
        image = frame.image
        low = LowRes(item.small, item.alpha) if item.small is not None else None
        enhance = self.enhancer.active
        step, origin, alpha, small = None, (0, 0), item.alpha, item.small
        if enhance and low is not None:
            # the effects decide first, so that a framed frame refines only what its crop shows
            step = self.enhancer.step((image.shape[1], image.shape[0]), item.alpha, low)
            region = None if step.rect is None else refine_region(
                step.rect, (image.shape[1], image.shape[0]), (item.alpha.shape[1], item.alpha.shape[0]))
            if region is not None:
                (x0, y0, x1, y1), (k0, j0, k1, j1) = region
                image, origin = image[y0:y1, x0:x1], (x0, y0)
                alpha, small = item.alpha[j0:j1, k0:k1], low.image[j0:j1, k0:k1]
        t_refine = self.clock()
        refine_both = getattr(self.refiner, "refine", None)  # alpha and decontaminated colours
        if refine_both is not None and getattr(compositor, "edge_colours", True):
            full, image = refine_both(alpha, image, small)
        else:
            full = self.refiner(alpha, image)
        t1 = self.clock()
        self.stats.stage("refine", t1 - t_refine)
        lut = None
        if enhance:
            sparse = getattr(compositor, "picture_under_alpha_only", None)
            if step is not None:
                done = self.enhancer.apply(step, image, full, low, origin=origin, sparse=sparse)
            else:
                done = self.enhancer(image, full, item.alpha, low, sparse=sparse)
            image, full, low, lut = done.image, done.alpha, done.low, done.lut
            if lut is not None and not getattr(compositor, "takes_lut", False):
                image = cv2.LUT(image, lut)  # a compositor that cannot read through the curve
                if low is not None:
                    low = LowRes(cv2.LUT(low.image, lut), low.alpha)
                lut = None
            t2 = self.clock()
            self.stats.stage("enhance", t2 - t1 + t_refine - t0)  # the step before the refinement too
            t1 = t2
        if self.on_alpha is not None:
            self.on_alpha(frame, full)
        if lut is not None:  # a compositor whose takes_lut is True (vcam.compositing)
            out = compositor(image, full, low, frame.pts, lut=lut)  # type: ignore[call-arg]
        else:
            out = compositor(image, full, low, frame.pts)
        self.stats.stage("composite", self.clock() - t1)
        return out
