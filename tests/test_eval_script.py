"""scripts/eval.py end to end on two tiny generated clips (one with ground truth, one without)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import pytest

from tests.helpers import REPO
from tests.helpers.media import portrait_frames, write_video
from vcam.tools.evaluation import clip_metrics, luma


def _load_eval() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vcam_eval_script", REPO / "scripts" / "eval.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _scored_with_engine(ev: ModuleType, setting: Any, clips: Path) -> tuple[Any, Any, Any]:
    """``setting`` run by the harness on the comp clip, and a fresh 128x72 engine to redo it by hand."""
    from vcam.matting import MattingEngine
    from vcam.matting.models import default_model_dir, ensure_model

    clip = ev.find_clips(clips, ["comp"], None)[0]
    model = ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir())
    [res] = ev.run_setting(setting, model, [clip], 1, None)
    eng = MattingEngine(model, providers=("cpu",), threads=1, input_size=(128, 72), downsample_ratio=0.5)
    return res, clip, eng


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    frames, alphas = portrait_frames(4, (160, 96))
    comp = root / "comp-tiny"
    (comp / "gt").mkdir(parents=True)
    write_video(comp / "input.mp4", frames)
    for i, a in enumerate(alphas):
        cv2.imwrite(str(comp / "gt" / f"{i:06d}.png"), np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8))
    real = root / "real-dark"
    real.mkdir()
    write_video(real / "input.mp4", [np.full((96, 160, 3), 20 + i, np.uint8) for i in range(3)])
    return root


def test_eval_runs_settings_and_references(clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = _load_eval()
    out = tmp_path / "r.json"
    rc = ev.main(["--clips", str(clips), "-s", "128x72@0.5/bilinear,guided", "--json", str(out),
                  "--mediapipe-python", str(tmp_path / "nope"), "--timing-frames", "2", "--timing-blocks", "1"])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert [r["setting"] for r in doc["results"]] == [
        "256x144@0.25/bilinear", "128x72@0.5/bilinear", "128x72@0.5/guided"]
    assert doc["unavailable"] == {
        "mediapipe-landscape": f"{tmp_path / 'nope'}: no such interpreter (set up .venv-eval as docs/quality.md says)"}
    r = doc["results"][1]
    comp, real = r["per_kind"]["comp"], r["per_kind"]["real"]
    assert comp["clips"] == 1 and r["per_clip"]["comp-tiny"]["frames"] == 4
    assert 0 <= comp["MAD"] < 1000 and 0 <= comp["IoU"] <= 1
    assert real["MAD"] is None and real["flicker"] is not None and r["per_clip"]["real-dark"]["frames"] == 3
    assert len(r["timing"]["infer_ms_blocks"]) == 1 and r["timing"]["frames"] == 2
    assert doc["scene_cuts"]["across_clips"]["joins"] == 2
    printed = capsys.readouterr().out
    assert "== comp (1 clips" in printed and "mediapipe-landscape: unavailable:" in printed


def _product_alpha(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """What vcam outputs for a model alpha: rounded to 8 bits, enlarged bilinearly
    (vcam.frames.enlarge), as 0..1."""
    from vcam.frames import enlarge

    a8 = np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
    return enlarge(a8, size).astype(np.float32) / 255


def test_eval_scores_match_the_metrics_module(clips: Path, tmp_path: Path) -> None:
    """The harness scores the refined alpha against the ground truth PNGs, nothing else."""
    ev = _load_eval()
    setting = ev.parse_setting("128x72@0.5/bilinear")
    res, clip, eng = _scored_with_engine(ev, setting, clips)
    preds, lumas, trues = [], [], []
    for rgb, gt in clip.frames(None):
        preds.append(_product_alpha(eng.infer(rgb), (160, 96)))
        lumas.append(luma(rgb))
        trues.append(gt)
    expected = clip_metrics(np.stack(preds), np.stack(lumas), np.stack(trues))
    got = {k: res.per_clip[clip.name][k] for k in expected}
    assert got == pytest.approx(expected, rel=1e-6)


def test_parse_setting_errors() -> None:
    ev = _load_eval()
    with pytest.raises(SystemExit, match="bad setting '384x216'"):
        ev.parse_setting("384x216")
    with pytest.raises(SystemExit, match="unknown refinement 'sharp'"):
        ev.parse_setting("384x216@0.5/sharp")
    s = ev.parse_setting("offline")
    assert (s.input_size, s.ratio, [n for n, _ in s.refiners]) == ((768, 432), 0.5, ["guided"])


def test_person_crop_geometry_and_hold() -> None:
    ev = _load_eval()
    crop = ev.PersonCrop(1.0)
    assert crop.current(160, 90) == (35, 0, 90, 90)  # centred, full height, square
    rgb = np.arange(90 * 160 * 3, dtype=np.uint32).reshape(90, 160, 3).astype(np.uint8)
    box = (-10, 50, 40, 60)  # reaches past the left and bottom edges
    patch = crop.extract(rgb, box)
    assert patch.shape == (60, 40, 3)
    assert np.array_equal(patch[:40, 10:], rgb[50:90, 0:30])  # the part inside the frame is the frame
    pasted = crop.paste(np.ones((60, 40), np.float32), box, 160, 90)
    assert pasted.sum() == 30 * 40 and pasted[50:, :30].min() == 1.0
    # a person where the crop already is: the crop holds still and the engine keeps its state
    alpha = np.zeros((90, 160), np.float32)
    alpha[8:84, 60:100] = 1.0
    crop = ev.PersonCrop(1.0)
    crop.current(160, 90)
    assert crop.observe(alpha) is False and crop.box == (80.0, 45.0, 90.0)


def test_eval_runs_a_crop_setting(clips: Path, tmp_path: Path) -> None:
    ev = _load_eval()
    out = tmp_path / "c.json"
    assert ev.main(["--clips", str(clips), "-s", "crop:96x96@0.5/bilinear", "--json", str(out), "--no-reference",
                    "--no-mediapipe", "--timing-blocks", "0"]) == 0
    [r] = json.loads(out.read_text())["results"]
    assert r["setting"] == "crop:96x96@0.5/bilinear"
    assert r["per_clip"]["comp-tiny"]["frames"] == 4 and "crop_resets" in r["per_clip"]["comp-tiny"]


def test_lag_setting_scores_each_frame_with_an_older_alpha(clips: Path) -> None:
    """lag1: frame t is scored with the alpha of frame t-1 (frame 0 with its own)."""
    ev = _load_eval()
    setting = ev.parse_setting("lag1:128x72@0.5/bilinear")
    assert setting.lag == 1 and setting.engine_label == "lag1:128x72@0.5"
    with pytest.raises(SystemExit, match="lag and crop do not combine"):
        ev.parse_setting("lag1:crop:128x72@0.5")
    res, clip, eng = _scored_with_engine(ev, setting, clips)
    frames = list(clip.frames(None))
    own = [_product_alpha(eng.infer(rgb), (160, 96)) for rgb, _ in frames]
    lagged = [own[0], *own[:-1]]
    expected = clip_metrics(np.stack(lagged), np.stack([luma(r) for r, _ in frames]), np.stack([g for _, g in frames]))
    got = {k: res.per_clip[clip.name][k] for k in expected}
    assert got == pytest.approx(expected, rel=1e-6)


def test_still_setting_skips_inference_only_while_the_picture_holds(clips: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """still<T>: a frame whose 8x8-block grey means all stay within T levels of the last matted
    frame reuses that frame's alpha; a huge T skips every frame after the first SETTLE_FRAMES
    (the product's gate, vcam/pipeline/still.py, always runs the model that long after a reset;
    1 here, the test clips being short)."""

    ev = _load_eval()
    assert ev.STILL_SETTLE == 10
    monkeypatch.setattr(ev, "STILL_SETTLE", 1)
    s = ev.parse_setting("still255:128x72@0.5/bilinear")
    assert s.still == 255.0 and s.engine_label == "still255:128x72@0.5"
    with pytest.raises(SystemExit, match="still does not combine"):
        ev.parse_setting("still2:lag1:128x72@0.5")
    from vcam.matting.models import default_model_dir, ensure_model

    model = ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir())
    clip = ev.find_clips(clips, ["comp"], None)[0]
    n = len(list(clip.frames(None)))
    [always] = ev.run_setting(s, model, [clip], 1, None)
    assert always.per_clip[clip.name]["inference_skipped_pct"] == round(100.0 * (n - 1) / n, 1)
    [never] = ev.run_setting(ev.parse_setting("still0.0001:128x72@0.5/bilinear"), model, [clip], 1, None)
    [plain] = ev.run_setting(ev.parse_setting("128x72@0.5/bilinear"), model, [clip], 1, None)
    assert never.per_clip[clip.name]["inference_skipped_pct"] == 0.0
    assert never.per_clip[clip.name]["MAD"] == plain.per_clip[clip.name]["MAD"]


def test_every_n_runs_the_model_on_every_nth_frame_and_reuses_its_alpha(clips: Path) -> None:
    ev = _load_eval()
    s = ev.parse_setting("every2:128x72@0.5/bilinear")
    assert (s.every, s.engine_label) == (2, "every2:128x72@0.5")
    with pytest.raises(SystemExit, match="does not combine"):
        ev.parse_setting("every2:lag1:128x72@0.5/bilinear")
    res, clip, eng = _scored_with_engine(ev, s, clips)
    preds, lumas, trues = [], [], []
    for n, (rgb, gt) in enumerate(clip.frames(None)):
        if n % 2 == 0:  # frames 0 and 2 run the model; 1 and 3 show the alpha before them
            alpha = eng.infer(rgb)
        preds.append(_product_alpha(alpha, (160, 96)))
        lumas.append(luma(rgb))
        trues.append(gt)
    expected = clip_metrics(np.stack(preds), np.stack(lumas), np.stack(trues))
    assert {k: res.per_clip[clip.name][k] for k in expected} == pytest.approx(expected, rel=1e-6)
