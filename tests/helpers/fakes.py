"""Test doubles beside the real interfaces: sources, engines, sinks and a pyvirtualcam backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyvirtualcam

from vcam.compositing import Compositor
from vcam.frames import Frame
from vcam.matting import Matter
from vcam.pipeline import LiveRunner, Stages
from vcam.sinks import Sink
from vcam.sources import Source


class FakeClock:
    """A clock that only moves when told to (or by ``step`` per call, if set)."""

    def __init__(self, start: float = 100.0, step: float = 0.0) -> None:
        self.now, self.step = start, step

    def __call__(self) -> float:
        t = self.now
        self.now += self.step
        return t

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ListSource:
    """Hands out the given RGB images in order, then None (or raises ``fail_with`` after them)."""

    def __init__(self, images: list[np.ndarray], fps: float = 30.0, clock: Callable[[], float] | None = None,
                 fail_with: BaseException | None = None) -> None:
        self.images, self.fps, self.name = images, fps, "list"
        self.clock = clock or (lambda: 0.0)
        self.fail_with = fail_with
        self.i = 0
        self.closed = False

    def read(self) -> Frame | None:
        if self.i >= len(self.images):
            if self.fail_with is not None:
                raise self.fail_with
            return None
        f = Frame(self.images[self.i], self.i, self.clock(), pts=self.i / self.fps)
        self.i += 1
        return f

    def close(self) -> None:
        self.closed = True


class FakeEngine:
    """Alpha = 1 where the red channel is over 127, at the model input size; counts resets."""

    provider = "fake"
    runtime = "fake"
    precision = "f32"
    downsample_ratio = 0.25
    threads = 1

    def __init__(self, input_size: tuple[int, int] = (64, 36)) -> None:
        self.input_size = input_size
        self.resets = 0
        self.calls = 0
        self.frames_since_reset = 0

    def reset(self) -> None:
        self.resets += 1
        self.frames_since_reset = 0

    def shrink(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        out: np.ndarray = cv2.resize(rgb, self.input_size, interpolation=cv2.INTER_NEAREST)
        return out

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.frames_since_reset += 1
        return (self.shrink(rgb)[..., 0] > 127).astype(np.float32)


class MemorySink:
    """Keeps every picture it is sent. ``available`` is what a daemon's ``sink_available``
    reads in tests (as :class:`~vcam.sinks.resilient.ResilientSink` reports it)."""

    name = "memory"
    available = True

    def __init__(self, fail_after: int | None = None) -> None:
        self.images: list[np.ndarray] = []
        self.pts: list[float | None] = []
        self.closed = False
        self.fail_after = fail_after

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        if self.fail_after is not None and len(self.images) >= self.fail_after:
            raise RuntimeError("sink failed on purpose")
        self.images.append(image.copy())
        self.pts.append(pts)

    def close(self) -> None:
        self.closed = True


def live_runner(source: Source, engine: Matter, compositor: Compositor, sink: Sink, *, output_size: tuple[int, int],
                alpha_policy: str = "wait", **stage_options: Any) -> LiveRunner:
    """A :class:`LiveRunner` over :class:`Stages` built from these parts."""
    return LiveRunner(source, Stages(engine, compositor, output_size=output_size, **stage_options), sink,
                      alpha_policy=alpha_policy)


class MemoryCameraBackend:
    """A pyvirtualcam backend that keeps frames in memory (registered as ``memory``)."""

    instances: ClassVar[list[MemoryCameraBackend]] = []
    fail_open: ClassVar[str | None] = None

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any) -> None:
        if MemoryCameraBackend.fail_open:
            raise RuntimeError(MemoryCameraBackend.fail_open)
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self._device = device or "/dev/video-memory"
        self.frames: list[bytes] = []
        self.closed = False
        MemoryCameraBackend.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        self.frames.append(frame.tobytes())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return self._device

    def native_fourcc(self) -> int | None:
        return None


def register_memory_backend() -> None:
    pyvirtualcam.register_backend("memory", MemoryCameraBackend)


if TYPE_CHECKING:  # the fakes satisfy the real protocols (scripts/check type-checks tests/helpers)
    _matter: Matter = FakeEngine()
    _source: Source = ListSource([])
    _sink: Sink = MemorySink()
