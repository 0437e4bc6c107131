"""The real RVM model through ONNX Runtime."""

import logging
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.media import portrait_frames
from vcam.compositing import upsample_alpha
from vcam.errors import ModelError
from vcam.matting import MattingEngine, available_cores


def test_alpha_shape_dtype_and_range(model_path: Path) -> None:
    eng = MattingEngine(model_path, providers=("cpu",), input_size=(256, 144), downsample_ratio=0.5)
    alpha = eng.infer(np.full((360, 640, 3), 120, np.uint8))
    assert alpha.shape == (144, 256)
    assert alpha.dtype == np.float32
    assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0


def test_alpha_is_close_to_ground_truth_on_a_real_portrait(model_path: Path) -> None:
    frames, truth = portrait_frames(10)
    eng = MattingEngine(model_path, providers=("cpu",), input_size=(384, 216), downsample_ratio=0.5)
    out = [upsample_alpha(eng.infer(f), (640, 360)) for f in frames]
    mad = np.mean([np.abs(o - t).mean() for o, t in zip(out[4:], truth[4:], strict=True)]) * 1e3
    inter = sum(((o > 0.5) & (t > 0.5)).sum() for o, t in zip(out[4:], truth[4:], strict=True))
    union = sum(((o > 0.5) | (t > 0.5)).sum() for o, t in zip(out[4:], truth[4:], strict=True))
    assert mad < 20.0
    assert inter / union > 0.88


def test_recurrent_state_is_kept_and_reset(model_path: Path) -> None:
    frames, _ = portrait_frames(3)
    eng = MattingEngine(model_path, providers=("cpu",), input_size=(256, 144), downsample_ratio=0.5)
    first = eng.infer(frames[0]).copy()
    again = eng.infer(frames[0]).copy()
    assert eng.frames_since_reset == 2
    # the second call saw the state of the first, so its result is not the fresh one
    assert float(np.abs(first - again).max()) > 0.01
    eng.reset()
    assert eng.frames_since_reset == 0
    assert np.array_equal(eng.infer(frames[0]), first)


def test_providers_skip_unavailable_and_report_the_active_one(model_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    skip = "ONNX Runtime provider {} is not available in this build; skipping"
    # a provider the user asked for (model.providers set): its absence is said at info level
    with caplog.at_level(logging.INFO, logger="vcam.matting.engine"):
        eng = MattingEngine(model_path, providers=("cuda", "cpu"))
    assert eng.provider == "cpu"
    assert skip.format("cuda") in caplog.messages
    assert any(m.startswith("matting engine: provider cpu (CPUExecutionProvider)") for m in caplog.messages)
    # the default list (every CPU machine lacks tensorrt and cuda): at debug level only (issue 13.7)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vcam.matting.engine"):
        MattingEngine(model_path, providers=("tensorrt", "cuda", "cpu"))
    assert skip.format("tensorrt") not in caplog.messages and skip.format("cuda") not in caplog.messages
    with caplog.at_level(logging.DEBUG, logger="vcam.matting.engine"):
        MattingEngine(model_path, providers=("tensorrt", "cuda", "cpu"))
    assert skip.format("tensorrt") in caplog.messages and skip.format("cuda") in caplog.messages


def test_no_usable_provider_is_an_error(model_path: Path) -> None:
    with pytest.raises(ModelError, match=r"^none of the configured providers \(cuda\) is available; add 'cpu' to model.providers$"):
        MattingEngine(model_path, providers=("cuda",))


def test_threads_default_to_available_cores(model_path: Path) -> None:
    assert MattingEngine(model_path, providers=("cpu",)).threads == available_cores()
    assert MattingEngine(model_path, providers=("cpu",), threads=1).threads == 1


def test_a_file_that_is_not_onnx_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(ModelError, match=rf"^cannot load model {bad}: .*; run 'vcam models fetch' to get a good copy$"):
        MattingEngine(bad, providers=("cpu",))


def test_bad_frame_is_rejected(model_path: Path) -> None:
    eng = MattingEngine(model_path, providers=("cpu",))
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\) uint8 RGB, got \(10, 10\) uint8"):
        eng.infer(np.zeros((10, 10), np.uint8))


def test_live_threads_are_one_when_one_keeps_up_and_all_cores_when_not(model_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vcam.matting.engine"):
        roomy = MattingEngine(model_path, providers=("cpu",), input_size=(128, 72), downsample_ratio=0.5, frame_budget_s=10.0)
    assert roomy.threads == 1 and roomy.thread_choice.startswith("automatic: one thread took ")
    assert "within 75% of the 10000.0 ms frame time" in roomy.thread_choice
    assert sum("matting engine: provider cpu" in m for m in caplog.messages) == 1  # logged once, after the choice
    assert any("1 intra-op thread (automatic: one thread took" in m for m in caplog.messages)
    tight = MattingEngine(model_path, providers=("cpu",), input_size=(128, 72), downsample_ratio=0.5, frame_budget_s=1e-6)
    assert tight.threads == available_cores()
    if available_cores() > 1:
        assert "more than 75% of the 0.0 ms frame time" in tight.thread_choice
    # a configured count is kept as it is; without a frame budget (file mode) every core is used
    fixed = MattingEngine(model_path, providers=("cpu",), threads=2, input_size=(128, 72), frame_budget_s=10.0)
    assert (fixed.threads, fixed.thread_choice) == (2, "configured")
    assert MattingEngine(model_path, providers=("cpu",), input_size=(128, 72)).thread_choice == "all cores"
    # the probe left no recurrent state behind
    assert roomy.frames_since_reset == 0 and tight.frames_since_reset == 0


def test_time_inference_is_a_positive_median(model_path: Path) -> None:
    eng = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=(128, 72), downsample_ratio=0.5)
    assert 0 < eng.time_inference(runs=3) < 60.0  # seconds, not milliseconds
    assert eng.frames_since_reset == 0


def test_io_binding_keeps_the_state_bound_and_gives_the_same_alpha(model_path: Path) -> None:
    """The GPU path (state kept as bound device values) run on the CPU device: same mattes."""
    frames, _ = portrait_frames(6)
    plain = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=(128, 72), downsample_ratio=0.5)
    bound = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=(128, 72), downsample_ratio=0.5,
                          io_binding=True)
    assert (plain.io_binding, bound.io_binding) == (False, True)
    for i, f in enumerate(frames):
        if i == 4:
            plain.reset()
            bound.reset()
        a, b = plain.infer(f), bound.infer(f)
        assert a.shape == b.shape == (72, 128) and b.dtype == np.float32
        assert np.array_equal(a, b), f"frame {i}"
    assert bound.frames_since_reset == 2


def test_tensorrt_gets_fp16_and_an_engine_cache(tmp_path: Path) -> None:
    from vcam.matting.engine import provider_options

    opts = provider_options(["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], tmp_path)
    assert opts[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    name, trt = opts[0]  # type: ignore[misc]
    assert name == "TensorrtExecutionProvider"
    assert trt == {"trt_fp16_enable": "True", "trt_engine_cache_enable": "True", "trt_engine_cache_path": str(tmp_path)}


def test_model_input_size_is_capped_in_the_config() -> None:
    # 4096x4096 took over 40 s to start (one inference about 5 s, 10 of them to choose the
    # threads) and could not be interrupted in that time.
    from vcam.config import validate_config
    from vcam.errors import ConfigError

    assert validate_config({"model": {"input_size": [1920, 1920]}}, "config").model.input_size == (1920, 1920)
    with pytest.raises(ConfigError) as info:
        validate_config({"model": {"input_size": [4096, 4096]}}, "config")
    assert str(info.value) == "config: model.input_size: width and height must be in 16..1920, got 4096x4096"


def test_thread_calibration_stops_at_its_time_limit(model_path: Path) -> None:
    eng = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=(128, 72), downsample_ratio=0.5)
    readings: list[float] = []

    def clock() -> float:  # every reading one second after the last: each inference "takes" 1 s
        readings.append(float(len(readings)))
        return readings[-1]

    assert eng.time_inference(runs=8, limit_s=3.0, clock=clock) == 1.0
    assert len(readings) == 1 + 2 * 2  # the start, then two inferences: 4 s had passed after the second
    readings.clear()
    assert eng.time_inference(runs=8, clock=clock) == 1.0
    assert len(readings) == 1 + 2 * 10  # no limit: two warm-up runs and eight timed ones
    assert eng.frames_since_reset == 0
