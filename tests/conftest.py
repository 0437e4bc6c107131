"""Shared fixtures: the real RVM model (fetched once, cached), generated media, evaldata."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

# isort: off
import vcam  # noqa: F401 - loads OpenCV before PyAV (see vcam/__init__.py)

# isort: on
import av
import numpy as np
import pytest

from vcam.matting.models import default_model_dir, ensure_model

REPO = Path(__file__).resolve().parents[1]
EVALDATA = REPO.parent / "shared" / "evaldata"


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The verified RVM MobileNetV3 model, fetched into the user cache on first use."""
    return ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir())


@pytest.fixture(scope="session")
def model_dir(model_path: Path) -> Path:
    return model_path.parent


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> Path:
    """HOME and XDG dirs inside tmp_path (no user config leaks in); models from the shared cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("VCAM_MODEL_DIR", str(model_dir))
    return home


def portrait_frames(n: int, size: tuple[int, int] = (640, 360), seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A real P3M portrait with its alpha over a real background, drifting sideways: RGB frames
    and the exact alpha (float32 0..1) of each, made from ../shared/evaldata."""
    from PIL import Image

    src = EVALDATA / "sources"
    fg = np.asarray(Image.open(src / "portraits" / "p_07141906.jpg").convert("RGB"))
    al = np.asarray(Image.open(src / "portraits" / "p_07141906.alpha.png").convert("L"))
    bg = np.asarray(Image.open(src / "backgrounds" / "Garden.jpg").convert("RGB"))
    import cv2

    w, h = size
    scale = h * 0.95 / fg.shape[0]
    pw, ph = int(fg.shape[1] * scale), int(fg.shape[0] * scale)
    fgs = cv2.resize(fg, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
    als = cv2.resize(al, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    bgs = cv2.resize(bg, (int(w * 1.2), h), interpolation=cv2.INTER_AREA).astype(np.float32)
    frames, alphas = [], []
    for t in range(n):
        x0 = (w - pw) // 2 + int(10 * np.sin(t / 5 + seed))
        y0 = h - ph
        a = np.zeros((h, w), np.float32)
        f = np.zeros((h, w, 3), np.float32)
        a[y0:, x0 : x0 + pw] = als
        f[y0:, x0 : x0 + pw] = fgs
        b = bgs[:, t * 2 : t * 2 + w]
        img = f * a[..., None] + b * (1 - a[..., None])
        frames.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
        alphas.append(a)
    return frames, alphas


def write_video(path: Path, frames: list[np.ndarray], fps: Fraction | int = 30, codec: str = "libx264") -> Path:
    """Encode RGB frames into a video file with PyAV."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=Fraction(fps))
        s.width, s.height = frames[0].shape[1], frames[0].shape[0]
        s.pix_fmt = "yuv420p"
        for img in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def color_frames(n: int, size: tuple[int, int] = (160, 96)) -> list[np.ndarray]:
    """Frames whose colour encodes their index (R = 10 * i), for order/count checks."""
    out = []
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[..., 0] = (10 * i) % 256
        img[..., 1] = 128
        out.append(img)
    return out


def count_frames(path: Path) -> tuple[int, Fraction, tuple[int, int]]:
    """(decoded frame count, average rate, (width, height)) of a video file."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return n, Fraction(s.average_rate), (s.codec_context.width, s.codec_context.height)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``vcam ARGV...`` in this process: (exit status, stdout, stderr)."""
    from vcam.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_line(text: str) -> str:
    """The last non-blank line of ``text``."""
    return [line for line in text.splitlines() if line.strip()][-1]
