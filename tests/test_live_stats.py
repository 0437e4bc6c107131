"""The live runner's counters add up (issue 13.7): every frame read is either sent or counted
as dropped, including those still in a hand-off or a stage when the run stops."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.helpers.fakes import FakeEngine, ListSource, MemorySink, live_runner
from vcam.compositing import BlurCompositor
from vcam.frames import Frame
from vcam.sinks import StopRequested

SIZE = (64, 36)


class SlowEngine(FakeEngine):
    def infer(self, rgb: np.ndarray) -> np.ndarray:
        time.sleep(0.004)  # slower than the source: frames queue up and are dropped
        return super().infer(rgb)


class SteadySource(ListSource):
    def read(self) -> Frame | None:
        time.sleep(0.0005)  # a camera-like trickle, faster than the engine
        return super().read()


class StopAfter(MemorySink):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        if len(self.images) >= self.n:
            raise StopRequested("enough")
        super().send(image, pts)


@pytest.mark.parametrize("policy", ["wait", "latest"])
def test_frames_in_is_frames_out_plus_dropped_after_a_stop(policy: str) -> None:
    images = [np.full((SIZE[1], SIZE[0], 3), i % 256, np.uint8) for i in range(3000)]
    sink = StopAfter(20)
    runner = live_runner(SteadySource(images), SlowEngine(), BlurCompositor(9), sink, output_size=SIZE, alpha_policy=policy)
    assert runner.run(threading.Event()) == "sink"
    s = runner.stages.stats.summary()
    assert s["frames_out"] == 20
    assert s["frames_in"] > 20
    assert s["frames_in"] == s["frames_out"] + s["frames_dropped"]
