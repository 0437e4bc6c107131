"""Still pictures in and out: ``vcam process photo.jpg -o photo-blur.png``, ``--mode remove -o
cut.png`` (RGBA), read back and checked against the photograph (tests/helpers/photo.py).
Measured first (offline preset, CPU): person boxes within 1.1-1.8 grey levels of the input
(the JPEG decoded by FFmpeg against Pillow), alpha 255 there and 0 in the backdrop boxes, the
flag's edge energy (mean |Laplacian|) 9.8 in the photograph, 1.2 blurred."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.helpers.cli import run_cli
from tests.helpers.media import color_frames, write_clip
from tests.helpers.photo import BACKGROUND, PERSON, astronaut, region_values

pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The photograph as a JPEG file, and its pixels as decoded by Pillow."""
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    Image.fromarray(astronaut()).save(path, quality=95)
    with Image.open(path) as im:
        return path, np.asarray(im.convert("RGB")).astype(np.float32)


def _edges(rgb: np.ndarray) -> float:
    grey = cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_photo_to_a_blurred_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], photo: tuple[Path, np.ndarray]
) -> None:
    src, pixels = photo
    out = tmp_path / "photo-blur.png"
    code, stdout, _ = run_cli(capsys, "process", str(src), "-o", str(out))
    assert (code, stdout) == (0, f"wrote {out} (1 frames)\n")
    with Image.open(out) as im:
        assert (im.format, im.mode, im.size) == ("PNG", "RGB", (512, 512))
        got = np.asarray(im).astype(np.float32)
    for name, box in PERSON.items():  # she is kept as she is
        assert float(np.abs(region_values(got, box) - region_values(pixels, box)).mean()) < 3, name
    flag = BACKGROUND["top-left flag"]
    assert _edges(region_values(got, flag)) < 0.25 * _edges(
        region_values(pixels, flag)
    )  # the flag is blurred
    assert _files(tmp_path) == ["home", "photo-blur.png"]  # no temporary file left


def test_remove_writes_an_rgba_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], photo: tuple[Path, np.ndarray]
) -> None:
    src, pixels = photo
    out = tmp_path / "cut.png"
    assert run_cli(capsys, "process", str(src), "-o", str(out), "--mode", "remove")[0] == 0
    with Image.open(out) as im:
        assert (im.mode, im.size) == ("RGBA", (512, 512))
        got = np.asarray(im).astype(np.float32)
    for name, box in PERSON.items():
        assert float(region_values(got[..., 3], box).min()) >= 0.95 * 255, name
        assert float(np.abs(region_values(got[..., :3], box) - region_values(pixels, box)).mean()) < 3, name
    for name, box in BACKGROUND.items():
        assert float(region_values(got[..., 3], box).max()) <= 0.01 * 255, name


def test_a_jpeg_output_and_what_it_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], photo: tuple[Path, np.ndarray]
) -> None:
    src, _ = photo
    out = tmp_path / "blur.jpg"
    assert run_cli(capsys, "process", str(src), "-o", str(out), "--mode", "color")[0] == 0
    with Image.open(out) as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (512, 512))
    code, _, err = run_cli(capsys, "process", str(src), "-o", str(tmp_path / "cut.jpg"), "--mode", "remove")
    assert (code, err) == (
        1,
        f"vcam: error: output {tmp_path / 'cut.jpg'}: a .jpg picture cannot keep transparency for --mode remove; use .png\n",
    )
    assert _files(tmp_path) == ["blur.jpg", "home"]


def test_a_video_into_a_still_picture_is_refused_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = write_clip(tmp_path / "in.mp4", color_frames(3, (64, 48)), rate=Fraction(25), audio=None)
    out = tmp_path / "still.png"
    code, stdout, err = run_cli(capsys, "process", str(clip), "-o", str(out), "--model-input", "64x48")
    assert (code, stdout) == (1, "")
    assert err.splitlines()[-1] == (
        f"vcam: error: output {out}: a still picture holds one frame, but the input has more; write a video "
        "(.mp4, .mov, .mkv, .webm) or a folder of PNG files (--codec png)"
    )
    assert _files(tmp_path) == ["home", "in.mp4"]


def test_an_existing_picture_is_kept_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], photo: tuple[Path, np.ndarray]
) -> None:
    src, _ = photo
    out = tmp_path / "photo-blur.png"
    out.write_bytes(b"mine")
    code, _, err = run_cli(capsys, "process", str(src), "-o", str(out))
    assert (code, err) == (1, f"vcam: error: output {out} already exists; pass --overwrite to replace it\n")
    assert out.read_bytes() == b"mine"
    assert run_cli(capsys, "process", str(src), "-o", str(out), "--overwrite")[0] == 0
    with Image.open(out) as im:
        assert im.size == (512, 512)
