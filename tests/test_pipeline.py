"""Pipeline behaviour with fakes: order, mirroring, state resets, drops, threads and errors."""

import threading
import time

import numpy as np
import pytest

from tests.helpers.fakes import FakeClock, FakeEngine, ListSource, MemorySink, live_runner
from vcam.compositing import ColorCompositor, PassThrough
from vcam.pipeline import LatestSlot, LiveRunner
from vcam.sinks import StopRequested


def _frames(n: int, size: tuple[int, int] = (64, 36)) -> list[np.ndarray]:
    out = []
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[:, : size[0] // 2, 0] = 255  # left half "person" (red > 127)
        img[..., 2] = i % 256
        out.append(img)
    return out


def _pipe(n: int = 5, **kw: object) -> tuple[LiveRunner, ListSource, FakeEngine, MemorySink]:
    src, eng, sink = ListSource(_frames(n)), FakeEngine(), MemorySink()
    pipe = live_runner(src, eng, ColorCompositor((0, 255, 0)), sink, output_size=(64, 36), **kw)
    return pipe, src, eng, sink


def test_step_processes_every_frame_in_order() -> None:
    pipe, _, eng, sink = _pipe(5)
    while pipe.step():
        pass
    assert len(sink.images) == 5 and eng.calls == 5
    assert [int(im[0, -1, 2]) for im in sink.images] == [0, 0, 0, 0, 0]  # background replaced by green
    assert [int(im[0, 0, 2]) for im in sink.images] == [0, 1, 2, 3, 4]  # person kept, in order
    assert sink.images[0][0, -1].tolist() == [0, 255, 0]
    assert sink.pts == [0.0, 1 / 30, 2 / 30, 3 / 30, 4 / 30]
    assert pipe.stages.stats.frames_in == 5 and pipe.stages.stats.frames_out == 5 and pipe.stages.stats.dropped == 0


def test_mirror_flips_before_matting() -> None:
    pipe, _, _, sink = _pipe(1, mirror=True)
    pipe.step()
    # the person moved to the right half, and kept its pixels there
    assert sink.images[0][0, -1, 0] == 255 and sink.images[0][0, 0].tolist() == [0, 255, 0]


def test_frames_are_fitted_to_the_output_size() -> None:
    src = ListSource([np.zeros((100, 100, 3), np.uint8)])
    sink = MemorySink()
    pipe = live_runner(src, FakeEngine(), PassThrough(), sink, output_size=(64, 36))
    pipe.step()
    assert sink.images[0].shape == (36, 64, 3)


def test_state_resets_on_start_size_change_after_off_and_on_source_change() -> None:
    imgs = _frames(2) + _frames(3, size=(80, 45))
    src, eng, sink = ListSource(imgs), FakeEngine(), MemorySink()
    pipe = live_runner(src, eng, ColorCompositor((0, 0, 0)), sink, output_size=(80, 45))
    pipe.stages.output_size = (64, 36)
    pipe.step()
    assert eng.resets == 1  # first frame
    pipe.step()
    assert eng.resets == 1  # continuing scene: state kept
    pipe.stages.output_size = (80, 45)
    pipe.step()
    assert eng.resets == 2  # input size changed
    pipe.stages.set_compositor(PassThrough())
    pipe.step()
    assert eng.calls == 3  # off: no inference
    pipe.stages.set_compositor(ColorCompositor((0, 0, 0)))
    pipe.step()
    assert eng.resets == 3  # back from off: fresh state
    pipe.set_source(ListSource(_frames(3)))
    assert eng.resets == 3  # asked for only: the reset happens on the thread that mattes
    pipe.step()
    assert eng.resets == 4  # source changed
    pipe.step()
    assert eng.resets == 4  # continuing the new source: state kept
    pipe.stages.output_size = (64, 36)
    pipe.step()
    assert eng.resets == 5  # new size: fresh state


def test_pause_passes_frames_through_and_resumes_with_fresh_state() -> None:
    pipe, _, eng, sink = _pipe(3)
    pipe.step()
    pipe.stages.set_held(True)
    pipe.step()
    assert eng.calls == 1
    assert sink.images[1][0, -1].tolist() == [0, 0, 1]  # raw frame
    pipe.stages.set_held(False)
    pipe.step()
    assert eng.calls == 2 and eng.resets == 2


def test_latest_slot_keeps_newest_and_counts_replaced() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.dropped == 2
    assert slot.get(0) == 3
    assert slot.get(0) is None
    slot.close()
    assert slot.get(None) is None


def test_run_drains_a_finite_source_without_loss_when_nothing_is_slow() -> None:
    # each put waits until the previous item was taken, so nothing is replaced
    class Paced(ListSource):
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, **k)
            self.sink: MemorySink | None = None

        def read(self):  # type: ignore[no-untyped-def]
            deadline = time.monotonic() + 5
            while self.sink is not None and len(self.sink.images) < self.i and time.monotonic() < deadline:
                time.sleep(0.001)
            return super().read()

    src, eng, sink = Paced(_frames(6)), FakeEngine(), MemorySink()
    src.sink = sink
    pipe = live_runner(src, eng, ColorCompositor((0, 255, 0)), sink, output_size=(64, 36))
    assert pipe.run(threading.Event()) == "end of source"
    assert [int(im[0, 0, 2]) for im in sink.images] == [0, 1, 2, 3, 4, 5]
    assert pipe.stages.stats.dropped == 0


def test_run_drops_stale_frames_when_the_sink_is_slow_and_counts_them() -> None:
    class SlowSink(MemorySink):
        def send(self, image, pts=None):  # type: ignore[no-untyped-def]
            time.sleep(0.02)
            super().send(image, pts)

    src, sink = ListSource(_frames(60)), SlowSink()
    pipe = live_runner(src, FakeEngine(), ColorCompositor((0, 0, 0)), sink, output_size=(64, 36))
    pipe.run(threading.Event())
    out = [int(im[0, 0, 2]) for im in sink.images]
    assert out == sorted(out) and out[-1] == 59  # newest frames win, order kept, the last one arrives
    assert pipe.stages.stats.frames_in == 60
    assert pipe.stages.stats.dropped == 60 - len(out) > 0


def test_errors_in_a_stage_thread_reach_the_caller() -> None:
    src = ListSource(_frames(3), fail_with=OSError("camera unplugged"))
    pipe = live_runner(src, FakeEngine(), PassThrough(), MemorySink(), output_size=(64, 36))
    with pytest.raises(OSError, match="camera unplugged"):
        pipe.run(threading.Event())
    assert not [t for t in threading.enumerate() if t.name.startswith("vcam-")]


class _Endless(ListSource):
    """Repeats its frames forever, a few ms apart, like a camera."""

    def read(self):  # type: ignore[no-untyped-def]
        time.sleep(0.005)
        self.i %= len(self.images)
        return super().read()


def test_sink_failure_stops_the_run() -> None:
    src = _Endless(_frames(3))
    pipe = live_runner(src, FakeEngine(), PassThrough(), MemorySink(fail_after=2), output_size=(64, 36))
    with pytest.raises(RuntimeError, match="sink failed on purpose"):
        pipe.run(threading.Event())


def test_stop_event_and_duration_end_the_run() -> None:
    pipe = live_runner(_Endless(_frames(1)), FakeEngine(), PassThrough(), MemorySink(), output_size=(64, 36))
    assert pipe.run(threading.Event(), duration=0.2) == "duration"
    stop = threading.Event()
    stop.set()
    assert pipe.run(stop) == "stopped"


def test_stats_latency_from_capture_to_sink() -> None:
    clock = FakeClock(step=0.001)
    src = ListSource(_frames(3), clock=clock)
    pipe = live_runner(src, FakeEngine(), PassThrough(), MemorySink(), output_size=(64, 36), clock=clock)
    while pipe.step():
        pass
    s = pipe.stages.stats.summary()
    assert s["frames_in"] == 3 and s["frames_out"] == 3 and s["frames_dropped"] == 0
    lat = s["latency_ms"]
    assert isinstance(lat, dict) and set(lat) == {"p50", "p95", "p99"}
    assert all(v is not None and v > 0 for v in lat.values())
    assert set(s["stage_ms"]) == {"capture", "prepare", "sink"}


class _SlowEngine(FakeEngine):
    def infer(self, rgb: np.ndarray) -> np.ndarray:
        time.sleep(0.03)
        return super().infer(rgb)


class _StuckEngine(FakeEngine):
    """Finishes its first inference at once; every later one waits until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        if self.calls >= 1:
            self.release.wait(30)
        return super().infer(rgb)


class _StopAfter(MemorySink):
    """Asks the run to stop at its ``n``-th picture, noting how many inferences had finished."""

    def __init__(self, n: int, engine: _StuckEngine) -> None:
        super().__init__()
        self.n, self.engine = n, engine
        self.inferences_seen: int | None = None

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        super().send(image, pts)
        if len(self.images) == self.n:
            self.inferences_seen = self.engine.calls
            self.engine.release.set()
            raise StopRequested


def test_latest_policy_never_shows_an_unmatted_frame_and_records_alpha_age() -> None:
    eng = _StuckEngine()
    src, sink = _Endless(_frames(4)), _StopAfter(20, eng)
    pipe = live_runner(src, eng, ColorCompositor((0, 255, 0)), sink, output_size=(64, 36),
                    alpha_policy="latest")
    assert pipe.run(threading.Event()) == "sink"
    # output keeps the source's pace while the model is stuck: 20 pictures on one alpha
    assert (len(sink.images), sink.inferences_seen) == (20, 1)
    # every frame has its background replaced: an alpha was always applied
    assert all(im[0, -1].tolist() == [0, 255, 0] for im in sink.images)
    age = pipe.stages.stats.alpha_age_ms()
    assert age["p50"] is not None and age["p50"] >= 0.0
    assert "alpha_age_ms" in pipe.stages.stats.summary()


def test_latest_policy_passes_through_in_off_mode_without_waiting() -> None:
    src, sink = _Endless(_frames(2)), MemorySink()
    eng = _SlowEngine()
    pipe = live_runner(src, eng, PassThrough(), sink, output_size=(64, 36), alpha_policy="latest")
    pipe.run(threading.Event(), duration=0.3)
    assert eng.calls == 0 and len(sink.images) > 10
    assert sink.images[0][0, -1].tolist() == [0, 0, 0]


def test_unknown_alpha_policy_is_refused() -> None:
    with pytest.raises(ValueError, match=r"alpha_policy must be one of \('wait', 'latest'\), got 'fast'"):
        live_runner(ListSource([]), FakeEngine(), PassThrough(), MemorySink(), output_size=(64, 36), alpha_policy="fast")


def test_a_stop_ends_the_capture_threads_wait_for_a_frame_100_s_away() -> None:
    """D5: at 0.01 fps the capture thread waits 100 s for the next frame; a stop must end that
    wait (the pipeline binds its stop to the source), not leave the thread behind."""
    from vcam.sources.synthetic import TestPatternSource

    src = TestPatternSource((64, 36), fps=0.01)
    sink = MemorySink()
    pipe = live_runner(src, FakeEngine(), PassThrough(), sink, output_size=(64, 36))
    stop = threading.Event()
    runner = threading.Thread(target=lambda: pipe.run(stop), name="test-run", daemon=True)
    runner.start()
    deadline = time.monotonic() + 60
    while not sink.images and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(sink.images) == 1  # the first frame went out; the next one is 100 s away
    time.sleep(0.2)
    stop.set()
    runner.join(60)
    assert not runner.is_alive()
    assert [t.name for t in threading.enumerate() if t.name.startswith("vcam-")] == []
    assert len(sink.images) == 1
