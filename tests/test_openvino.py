"""The real RVM model through OpenVINO's own API, against the ONNX Runtime engine."""

import numpy as np
import pytest

from tests.helpers.media import portrait_frames
from vcam.errors import ModelError
from vcam.matting import MattingEngine
from vcam.matting import openvino_engine as ove

pytest.importorskip("openvino")


def _native_bf16() -> bool:
    return "bf16" in ove.native_precisions()


def test_alpha_shape_dtype_range_and_names(model_path) -> None:
    eng = ove.OpenVinoEngine(model_path, threads=1, input_size=(256, 144), downsample_ratio=0.5)
    alpha = eng.infer(np.full((360, 640, 3), 120, np.uint8))
    assert alpha.shape == (144, 256)
    assert alpha.dtype == np.float32
    assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0
    assert (eng.runtime, eng.precision, eng.provider, eng.threads) == ("openvino", "f32", "openvino-cpu", 1)


@pytest.mark.parametrize(("size", "ratio"), [((384, 216), 0.5), ((250, 170), 0.37)])  # odd sizes round up
def test_f32_alpha_follows_onnx_runtime_frame_for_frame_with_state_carried(model_path, size, ratio) -> None:
    frames, _ = portrait_frames(8)
    ort = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=size, downsample_ratio=ratio)
    ov = ove.OpenVinoEngine(model_path, threads=1, input_size=size, downsample_ratio=ratio)
    diffs = [float(np.abs(ort.infer(f) - ov.infer(f)).max()) for f in frames]
    # full-size zero state at reset (static shapes) gives the alpha of ORT's [1,1,1,1] start
    assert max(diffs) < 1e-3, diffs
    # and the state is carried: a fresh engine on the last frame alone gives another alpha
    fresh = ove.OpenVinoEngine(model_path, threads=1, input_size=size, downsample_ratio=ratio)
    assert float(np.abs(fresh.infer(frames[-1]) - ort.infer(frames[-1])).max()) > 0.01


@pytest.mark.skipif(not _native_bf16(), reason="this CPU has no native bf16 (OpenVINO's CPU capabilities)")
def test_bf16_alpha_is_close_to_onnx_runtime_f32(model_path) -> None:
    frames, _ = portrait_frames(8)
    ort = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=(384, 216), downsample_ratio=0.5)
    ov = ove.OpenVinoEngine(model_path, precision="bf16", threads=1, input_size=(384, 216), downsample_ratio=0.5)
    assert ov.precision == "bf16"
    a = [ort.infer(f) for f in frames]
    b = [ov.infer(f) for f in frames]
    mean_diff = float(np.mean([np.abs(x - y).mean() for x, y in zip(a, b, strict=True)]))
    assert mean_diff < 2e-3, mean_diff
    assert float(np.abs(a[-1] - b[-1]).max()) > 0.0  # really another arithmetic, not f32 again


def test_recurrent_state_is_kept_and_reset(model_path) -> None:
    frames, _ = portrait_frames(3)
    eng = ove.OpenVinoEngine(model_path, threads=1, input_size=(256, 144), downsample_ratio=0.5)
    first = eng.infer(frames[0]).copy()
    again = eng.infer(frames[0]).copy()
    assert eng.frames_since_reset == 2
    assert float(np.abs(first - again).max()) > 0.01
    eng.reset()
    assert eng.frames_since_reset == 0
    assert np.array_equal(eng.infer(frames[0]), first)


def test_an_alpha_returned_is_not_overwritten_by_the_next_call(model_path) -> None:
    # the request writes every alpha into one buffer; what infer returned must stay as it was
    frames, _ = portrait_frames(3)
    eng = ove.OpenVinoEngine(model_path, threads=1, input_size=(256, 144), downsample_ratio=0.5)
    first = eng.infer(frames[0])
    kept = first.copy()
    second = eng.infer(frames[2])
    assert float(np.abs(second - kept).max()) > 0.01  # another alpha came out
    assert np.array_equal(first, kept)


def test_emulated_precision_is_refused(model_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ove, "native_precisions", lambda core=None: ("f32",))
    with pytest.raises(ModelError, match=r"^this CPU has no native bf16 \(OpenVINO's CPU capabilities: .*\); use model.precision: f32$"):
        ove.OpenVinoEngine(model_path, precision="bf16", threads=1)


def test_not_installed_is_a_clear_error(model_path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise ImportError("No module named 'openvino'")

    monkeypatch.setattr(ove, "_openvino", missing)
    assert ove.openvino_version() is None
    with pytest.raises(ModelError, match=r"^the openvino runtime is not installed; in the vcam folder: pip install '\.\[cpu,openvino\]'$"):
        ove.OpenVinoEngine(model_path)


def test_a_ratio_too_small_for_the_input_is_a_clear_error(model_path) -> None:
    with pytest.raises(ModelError, match=r"^the model cannot run at input 64x36 with downsample ratio 0.01 \("):
        ove.OpenVinoEngine(model_path, threads=1, input_size=(64, 36), downsample_ratio=0.01)


def test_importing_openvino_writes_nothing_in_home(tmp_path) -> None:
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    code = "from vcam.matting.openvino_engine import _openvino, native_precisions; _openvino(); print(native_precisions())"
    out = subprocess.run([sys.executable, "-c", code], env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True)
    assert "f32" in out.stdout
    assert list(home.iterdir()) == []  # openvino-telemetry would have written ~/intel/openvino_ga_cid
