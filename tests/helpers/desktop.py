"""Fakes and builders for the desktop tests (controller, reload, on-demand, tray)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.helpers.fakes import FakeClock, FakeEngine, MemorySink
from vcam.config import Config, validate_config
from vcam.errors import DeviceError
from vcam.frames import Frame
from vcam.live.control import Controller
from vcam.pipeline import LiveRunner, Stages
from vcam.sources.gated import GatedSource

SIZE = (64, 36)  # output size = camera size: no resizing, exact pixels
W, H = SIZE
COLOR = (255, 0, 255)


def split_frame(index: int = 0) -> np.ndarray:
    """Left half red=255 ("person" for FakeEngine), right half red=0; green and blue vary."""
    img = np.zeros((H, W, 3), np.uint8)
    img[:, : W // 2, 0] = 255
    img[..., 1] = 40 + index % 100
    img[..., 2] = np.arange(W, dtype=np.uint8)[None, :]
    return img


# Interior pixels, away from the person/background edge (alpha there is exactly 0 or 1).
PERSON = (slice(None), slice(0, W // 2 - 4))
BACKGROUND = (slice(None), slice(W // 2 + 4, W))


class LoopSource:
    """An endless camera: hands out ``split_frame(i)``; counts opens through its factory."""

    name = "fake camera"
    fps = 30.0

    def __init__(self, log: list[str], tag: str) -> None:
        self.log, self.tag = log, tag
        self.i = 0
        self.closed = False
        log.append(f"open {tag}")

    def read(self) -> Frame:
        f = Frame(split_frame(self.i), self.i, 0.0)
        self.i += 1
        return f

    def close(self) -> None:
        self.closed = True
        self.log.append(f"close {self.tag}")


@dataclass
class CameraFactory:
    """Opens LoopSources tagged with the camera device; raises DeviceError(message) for a
    device in ``failing`` or, for any device, while ``fail`` is set."""

    log: list[str] = field(default_factory=list)
    failing: dict[object, str] = field(default_factory=dict)
    fail: str | None = None

    def __call__(self, cfg: Config | None = None) -> LoopSource:
        device = cfg.camera.device if cfg is not None else 0
        message = self.fail or self.failing.get(device)
        if message:
            self.log.append(f"fail {device}")
            raise DeviceError(message)
        return LoopSource(self.log, str(device))


class FakeCounter:
    """A consumer counter whose value the test sets."""

    def __init__(self, n: int = 0) -> None:
        self.n = n
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.n


@dataclass
class Rig:
    """A controller on real Stages and a LiveRunner with fake camera, engine and sink, driven by step()."""

    controller: Controller
    pipeline: LiveRunner
    engine: FakeEngine
    sink: MemorySink
    source: GatedSource
    cameras: CameraFactory
    stop: threading.Event
    clock: FakeClock

    def frame(self) -> np.ndarray:
        """Run one frame through the pipeline and return what the sink got."""
        assert self.pipeline.step()
        return self.sink.images[-1]


def make_rig(
    effect: dict[str, Any] | None = None,
    *,
    camera: dict[str, Any] | None = None,
    config_path: Path | None = None,
    load_config: Callable[[], Config] | None = None,
    build_engine: Callable[[Config], Any] | None = None,
    watch_consumers: bool = False,
) -> Rig:
    cfg = validate_config({
        "camera": {"size": list(SIZE), "fps": 30, **(camera or {})},
        "effect": {"color": list(COLOR), **(effect or {})},
    })
    clock = FakeClock()
    cameras = CameraFactory()
    source = GatedSource(cameras, SIZE, clock=clock, sleep=clock.sleep)
    engine = FakeEngine((16, 9))
    sink = MemorySink()
    from vcam.compositing import make_compositor

    stages = Stages(engine, make_compositor(cfg.effect, SIZE, 30.0), output_size=SIZE, clock=clock)
    pipeline = LiveRunner(source, stages, sink)
    stop = threading.Event()
    controller = Controller(
        stages,
        cfg,
        stop=stop,
        source=source,
        sink_available=lambda: sink.available,
        config_path=config_path,
        load_config=load_config,
        build_engine=build_engine,
        open_source=cameras,
        watch_consumers=watch_consumers,
    )
    return Rig(controller, pipeline, engine, sink, source, cameras, stop, clock)
