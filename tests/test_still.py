"""Still-frame reuse and first-frame warm-up in ``Stages.matte``, with the real model on real
portrait frames: what is skipped, what runs, and that the recurrent state stays coherent."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.media import portrait_frames
from vcam.compositing import PassThrough
from vcam.frames import Frame
from vcam.matting import MattingEngine
from vcam.pipeline.stages import Stages
from vcam.pipeline.still import SETTLE_FRAMES, StillGate, block_means
from vcam.presets import PRESETS

SIZE = (320, 180)
MODEL = (192, 108)


class _Counting:
    """The real engine, counting model calls (the Matter protocol passed through)."""

    def __init__(self, engine: MattingEngine) -> None:
        self.engine, self.calls = engine, 0

    input_size = property(lambda self: self.engine.input_size)
    provider = property(lambda self: self.engine.provider)
    runtime = property(lambda self: self.engine.runtime)
    precision = property(lambda self: self.engine.precision)
    threads = property(lambda self: self.engine.threads)
    downsample_ratio = property(lambda self: self.engine.downsample_ratio)

    def reset(self) -> None:
        self.engine.reset()

    def shrink(self, rgb: np.ndarray) -> np.ndarray:
        return self.engine.shrink(rgb)

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.engine.infer(rgb)


class _Needs(PassThrough):
    needs_alpha = True


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return portrait_frames(16, SIZE)[0]


def _engine(model_path) -> _Counting:  # type: ignore[no-untyped-def]
    return _Counting(MattingEngine(model_path, providers=("cpu",), threads=1, input_size=MODEL, downsample_ratio=0.5))


def _noisy(img: np.ndarray, seed: int, sigma: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape) + 0.5, 0, 255).astype(np.uint8)


def test_block_change_at_the_threshold_runs_below_it_is_still() -> None:
    small = np.full((16, 32, 3), 100, np.uint8)
    gate = StillGate(4.0, settle=0)
    assert gate.reuse(small) is None
    gate.record(alpha := np.zeros((16, 32), np.float32))
    moved = small.copy()
    moved[8:16, 8:16] = 104  # one 8x8 block by exactly 4 levels: moved
    assert gate.reuse(moved) is None and gate.last_change == pytest.approx(4.0)
    gate.record(alpha)
    back = moved.copy()
    back[0:8, 0:8] = 103  # against the last run frame: 3 levels in one block: still
    assert gate.reuse(back) is alpha and gate.skipped == 1
    assert block_means(small).shape == (2, 4)


def test_identical_frames_skip_the_model_after_it_settled_changed_frames_run_it(model_path, frames) -> None:  # type: ignore[no-untyped-def]
    engine = _engine(model_path)
    stages = Stages(engine, _Needs(), output_size=SIZE, still=4.0)  # type: ignore[arg-type]
    held = frames[0]
    alphas = [stages.matte(Frame(_noisy(held, i), i, 0.0)).alpha for i in range(SETTLE_FRAMES + 5)]
    assert engine.calls == SETTLE_FRAMES  # the model settles, then the still frames are skipped
    for a in alphas[SETTLE_FRAMES:]:
        assert a is alphas[SETTLE_FRAMES - 1]  # the last alpha itself, reused
    # the person moves: the model runs on every moving frame
    for i, f in enumerate(frames[4:10]):
        stages.matte(Frame(f, 100 + i, 0.0))
    assert engine.calls == SETTLE_FRAMES + 6
    assert stages.still is not None and stages.still.skipped == 5
    # off (threshold 0): the model runs on every frame
    off = _engine(model_path)
    plain = Stages(off, _Needs(), output_size=SIZE)  # type: ignore[arg-type]
    for i in range(SETTLE_FRAMES + 5):
        plain.matte(Frame(held, i, 0.0))
    assert off.calls == SETTLE_FRAMES + 5 and plain.still is None


def test_the_state_after_skipped_frames_is_the_state_of_the_last_run(model_path, frames) -> None:  # type: ignore[no-untyped-def]
    """Skipped frames do not advance the recurrent state: the first moving frame's alpha is
    exactly what the model gives after the frames it did run on."""
    held = [_noisy(frames[0], i, 1.0) for i in range(SETTLE_FRAMES + 6)]
    moving = frames[6:9]
    gated = Stages(_engine(model_path), _Needs(), output_size=SIZE, still=4.0)  # type: ignore[arg-type]
    out = [gated.matte(Frame(f, i, 0.0)).alpha for i, f in enumerate(held + moving)]
    assert gated.still is not None and gated.still.skipped == 6
    ref = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=MODEL, downsample_ratio=0.5)
    for f in held[:SETTLE_FRAMES]:
        ref.infer(ref.shrink(f))
    want = [ref.infer(ref.shrink(f)) for f in moving]
    for got, exp in zip(out[-3:], want, strict=True):
        np.testing.assert_array_equal(got, exp)
    # and it differs from a state that had seen the held frames too (the skip is real)
    ref.reset()
    for f in held:
        ref.infer(ref.shrink(f))
    assert not np.array_equal(ref.infer(ref.shrink(moving[0])), out[-3])


def test_a_reset_runs_the_model_again_before_anything_is_skipped(model_path, frames) -> None:  # type: ignore[no-untyped-def]
    engine = _engine(model_path)
    stages = Stages(engine, _Needs(), output_size=SIZE, still=4.0)  # type: ignore[arg-type]
    for i in range(SETTLE_FRAMES + 2):
        stages.matte(Frame(frames[0], i, 0.0))
    assert engine.calls == SETTLE_FRAMES
    stages.matte(Frame(frames[0], 50, 0.0, restart=True))
    stages.request_reset()
    for i in range(3):
        stages.matte(Frame(frames[0], 51 + i, 0.0))
    assert engine.calls == SETTLE_FRAMES + 4  # fresh state: settles again


def test_a_new_engine_runs_before_its_first_alpha_is_reused(model_path, frames) -> None:  # type: ignore[no-untyped-def]
    first = _engine(model_path)
    stages = Stages(first, _Needs(), output_size=SIZE, still=4.0)  # type: ignore[arg-type]
    for i in range(SETTLE_FRAMES + 2):
        stages.matte(Frame(frames[0], i, 0.0))
    assert first.calls == SETTLE_FRAMES
    second = _engine(model_path)
    stages.set_engine(second)  # e.g. a reload: the picture is still, the engine is new
    stages.matte(Frame(frames[0], 20, 0.0))
    assert second.calls == 1 and first.calls == SETTLE_FRAMES


def test_realtime_preset_reuses_offline_does_not() -> None:
    assert PRESETS["realtime"].still > 0
    assert PRESETS["offline"].still == 0


def test_warm_up_gives_the_first_frame_a_settled_matte(model_path, frames) -> None:  # type: ignore[no-untyped-def]
    """The first frame's alpha with N warm-up runs is the model's N+1-th run on it, closer to
    the settled alpha (the same frame run many times) than the cold first alpha."""
    first = frames[0]
    ref = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=MODEL, downsample_ratio=0.5)
    runs = [ref.infer(ref.shrink(first)) for _ in range(20)]
    cold, settled = runs[0], runs[-1]
    engine = _engine(model_path)
    stages = Stages(engine, _Needs(), output_size=SIZE, warmup=4)  # type: ignore[arg-type]
    warm = stages.matte(Frame(first, 0, 0.0)).alpha
    assert warm is not None and engine.calls == 5
    np.testing.assert_array_equal(warm, runs[4])
    assert float(np.abs(warm - settled).mean()) < 0.75 * float(np.abs(cold - settled).mean())  # 0.56x here
    stages.matte(Frame(frames[1], 1, 0.0))
    assert engine.calls == 6  # only the first frame after a reset is warmed up
    stages.matte(Frame(frames[2], 2, 0.0, restart=True))
    assert engine.calls == 11


@pytest.mark.parametrize(("preset", "reused"), [("realtime", 5), ("offline", 0)])
def test_vcam_process_applies_the_presets_reuse_and_warm_up(tmp_path, model_path, frames, preset, reused) -> None:  # type: ignore[no-untyped-def]
    """``vcam process --preset realtime`` reuses still frames as ``vcam run`` does; the first
    frame is warmed up (model.warmup extra runs) whatever the preset."""
    from tests.helpers.media import write_video
    from vcam.config import validate_config
    from vcam.files.process import FileOptions, process_file

    held = [frames[0]] * (SETTLE_FRAMES + 5)  # a still picture (the encoder adds its own noise)
    inp = write_video(tmp_path / "still.mp4", held)
    cfg = validate_config({"model": {"preset": preset, "input_size": [192, 108]}, "effect": {"mode": "blur"}})
    engine = _engine(model_path)
    summary = process_file(cfg, inp, tmp_path / "out.mp4", FileOptions(overlap=False), engine=engine)  # type: ignore[arg-type]
    assert summary["frames_written"] == len(held)
    assert summary["still_reused"] == reused
    assert engine.calls == len(held) - reused + cfg.model.warmup
