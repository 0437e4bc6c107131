"""The real model on a real photograph of a person that a PyPI package ships (scikit-image's
``astronaut``, tests/helpers/photo.py) and on generated media: what a plain clone checks
without the evaluation data. The bounds were measured first (ONNX Runtime CPU, model input
384x384 @ 0.5): every pixel of the person boxes came out at 1.0 and every pixel of the backdrop
boxes at 0.0, from the first frame on; the bounds leave a little room for other builds."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.cli import run_cli
from tests.helpers.fakes import ListSource, MemorySink, live_runner
from tests.helpers.media import write_video
from tests.helpers.photo import BACKGROUND, PERSON, astronaut, drifting, region_values
from vcam.compositing import PassThrough, upsample_alpha
from vcam.frames import Frame
from vcam.matting import MattingEngine
from vcam.pipeline.scenecut import SceneCutDetector
from vcam.sources.file import FileSource
from vcam.sources.synthetic import TestPatternSource

SQUARE = (384, 384)  # the photograph is square: the model sees it undistorted
N = 6  # frames per scene
# of the decoded RGB pixels (scikit-image 0.26.0; the file is unchanged since it was added)
PIXELS_SHA256 = "a8c429c18afa7b0fd5673e598d73a21225d94c864a71bbb3885126fdecb41071"


def _engine(model_path: Path, size: tuple[int, int] = SQUARE) -> MattingEngine:
    return MattingEngine(model_path, providers=("cpu",), threads=1, input_size=size, downsample_ratio=0.5)


def _assert_matted(alpha: np.ndarray) -> None:
    """Alpha of the whole photograph (any resolution): the person boxes in, the backdrop out."""
    for name, box in PERSON.items():
        inside = region_values(alpha, box)
        assert float(inside.min()) >= 0.95, f"{name}: lowest alpha {inside.min():.3f}"
    for name, box in BACKGROUND.items():
        outside = region_values(alpha, box)
        assert float(outside.max()) <= 0.01, f"{name}: highest alpha {outside.max():.3f}"


def test_the_photograph_is_the_one_the_boxes_were_drawn_on() -> None:
    img = astronaut()
    assert (img.shape, img.dtype) == ((512, 512, 3), np.uint8)
    assert hashlib.sha256(img.tobytes()).hexdigest() == PIXELS_SHA256


def test_alpha_shape_dtype_and_range_on_the_photograph(model_path: Path) -> None:
    alpha = _engine(model_path).infer(astronaut())
    assert (alpha.shape, alpha.dtype) == ((384, 384), np.float32)
    assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0
    assert float(alpha.min()) <= 0.01 and float(alpha.max()) >= 0.99  # both person and backdrop are there


def test_the_person_is_matted_and_the_backdrop_is_not(model_path: Path) -> None:
    eng = _engine(model_path)
    img = astronaut()
    for _ in range(4):  # the first frame (zero state) and after the state has warmed up
        _assert_matted(upsample_alpha(eng.infer(img), (512, 512)))


def test_a_panning_camera_keeps_the_matte(model_path: Path) -> None:
    """Frames that move over the photograph: each matte, mapped back onto the photograph, still
    has the person in and the backdrop out. Where her suit touches the frame's lower edge the
    matte is softer (lowest measured 0.77, frame 2; 1.0 away from the edge)."""
    eng = _engine(model_path)
    size, step = 448, 8
    for i, frame in enumerate(drifting(N, size, step)):
        alpha = upsample_alpha(eng.infer(frame), (size, size))
        full = np.full((512, 512), np.nan, np.float32)
        full[i * step : i * step + size, i * step : i * step + size] = alpha
        for name, box in PERSON.items():
            assert float(np.nanmin(region_values(full, box))) >= 0.7, (i, name)
        for name, box in BACKGROUND.items():
            seen = region_values(full, box)
            if np.isfinite(seen).any():  # the top-left boxes leave the picture as it pans
                assert float(np.nanmax(seen)) <= 0.01, (i, name)


def test_the_state_is_carried_and_reset_gives_the_first_result_again(model_path: Path) -> None:
    eng = _engine(model_path, (128, 128))
    frames = drifting(3, 448, 16)
    first = eng.infer(frames[0]).copy()
    later = [eng.infer(f).copy() for f in frames[1:]]
    again = eng.infer(frames[0]).copy()
    assert eng.frames_since_reset == 4
    assert float(np.abs(again - first).max()) > 0.01  # the state of the frames before changed it
    eng.reset()
    assert eng.frames_since_reset == 0
    assert np.array_equal(eng.infer(frames[0]), first)
    assert len(later) == 2


def _scenes(tmp_path: Path) -> list[np.ndarray]:
    """N frames panning over the photograph, then N of the generated test pattern, through a
    real video file and vcam's reader: 2 * N RGB frames of 320x320."""
    first = [
        np.asarray(Image.fromarray(f).resize((320, 320), Image.Resampling.BILINEAR))
        for f in drifting(N, 448, 8)
    ]
    pattern = TestPatternSource(size=(320, 320), frames=N, pace=False)
    second = []
    while (frame := pattern.read()) is not None:
        second.append(frame.image)
    path = write_video(tmp_path / "cut.mp4", first + second, Fraction(25))
    src = FileSource(path)
    out = []
    while (f := src.read()) is not None:
        out.append(f.image)
    src.close()
    assert len(out) == 2 * N
    return out


def _mattes(frames: list[np.ndarray], engine: MattingEngine, scene_cuts: bool) -> list[np.ndarray]:
    alphas: list[np.ndarray] = []

    class _NeedsAlpha(PassThrough):
        needs_alpha = True

    def keep(frame: Frame, alpha: np.ndarray) -> None:
        alphas.append(alpha.copy())

    runner = live_runner(
        ListSource(frames),
        engine,
        _NeedsAlpha(),
        MemorySink(),
        output_size=(320, 320),
        on_alpha=keep,
        scene_cuts=scene_cuts,
    )
    while runner.step():
        pass
    return alphas


def test_a_scene_cut_is_found_and_no_matte_bleeds_across_it(tmp_path: Path, model_path: Path) -> None:
    frames = _scenes(tmp_path)
    det = SceneCutDetector()
    assert [det.update(f) for f in frames] == [i == N for i in range(2 * N)]
    alone = _mattes(frames[N:], _engine(model_path, (128, 128)), scene_cuts=True)
    cut = _mattes(frames, _engine(model_path, (128, 128)), scene_cuts=True)[N:]
    bleed = _mattes(frames, _engine(model_path, (128, 128)), scene_cuts=False)[N:]
    assert all(np.array_equal(a, b) for a, b in zip(cut, alone, strict=True))
    assert float(np.abs(bleed[0] - alone[0]).max()) > 0.05  # without the reset, the photograph leaks in


@pytest.mark.usefixtures("isolated_home")
def test_vcam_process_mattes_the_photograph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command end to end on a clip of the still photograph: every matte PNG has the
    person in and the backdrop out."""
    clip = write_video(tmp_path / "astronaut.mp4", [astronaut()] * 4, Fraction(25))
    out, mattes = tmp_path / "out.mp4", tmp_path / "mattes"
    code, stdout, _ = run_cli(
        capsys,
        "process",
        str(clip),
        "-o",
        str(out),
        "--matte-out",
        str(mattes),
        "--model-input",
        "384x384",
        "--downsample-ratio",
        "0.5",
    )
    assert (code, stdout) == (0, f"wrote {out} (4 frames)\n")
    names = sorted(p.name for p in mattes.iterdir())
    assert names == [f"{i:06d}.png" for i in range(4)]
    for name in names:
        with Image.open(mattes / name) as m:
            assert (m.mode, m.size) == ("L", (512, 512))
            _assert_matted(np.asarray(m).astype(np.float32) / 255)
