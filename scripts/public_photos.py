"""Public-domain photographs that the scikit-image wheel (a dev extra) ships, for the pictures in
docs/ (the evaluation data must not go into the repository). Read from the installed files: no
network, no import of scikit-image. The licences are those of scikit-image's ``skimage.data``
docstrings:

* ``astronaut.png``: Eileen Collins, NASA; "no known copyright restrictions, released into the
  public domain" (512x512).
* ``rocket.jpg``: DSCOVR's launch on a Falcon 9, by SpaceX; "released in the public domain"
  (640x427).

Used by ``scripts/eval_enhance.py --photo-pictures`` and ``scripts/eval_edges.py --photo-crop``.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np

from vcam.compositing import BlurCompositor
from vcam.compositing.refine import make_refiner
from vcam.frames import Frame
from vcam.matting import MattingEngine
from vcam.matting.models import default_model_dir, ensure_model
from vcam.pipeline.stages import Stages
from vcam.presets import OFFLINE_PRESET, PRESETS, WARMUP_RUNS

PERSON = "astronaut.png"
BACKGROUND = "rocket.jpg"
CREDIT = {
    PERSON: "Eileen Collins (NASA, public domain)",
    BACKGROUND: "DSCOVR launch (SpaceX, public domain)",
}


def photo_path(name: str) -> Path:
    """The installed file ``skimage/data/<name>``."""
    try:
        path = Path(str(metadata.distribution("scikit-image").locate_file(f"skimage/data/{name}")))
    except metadata.PackageNotFoundError:
        raise SystemExit("scikit-image is not installed (a dev extra): pip install -e '.[cpu,dev]'") from None
    if not path.is_file():
        raise SystemExit(f"{path}: not in the installed scikit-image")
    return path


def read_rgb(name: str) -> np.ndarray:
    """The photograph ``name``: (H, W, 3) uint8 RGB."""
    from PIL import Image

    with Image.open(photo_path(name)) as im:
        return np.asarray(im.convert("RGB")).copy()


def engine_for(preset: str, threads: int = 2) -> MattingEngine:
    """The real RVM model (fp32) at ``preset``'s input size and downsample ratio, on the CPU."""
    p = PRESETS[preset]
    model = ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir())
    return MattingEngine(
        model,
        providers=("cpu",),
        threads=threads,
        input_size=p.input_size,
        downsample_ratio=p.downsample_ratio,
    )


def offline_matte(img: np.ndarray) -> np.ndarray:
    """vcam's file-mode matte of one picture: the ``offline`` preset's engine and refiner through
    ``Stages``, with the warm-up runs ``vcam process`` does on a first frame; uint8 alpha at the
    picture's size."""
    got: list[np.ndarray] = []
    stages = Stages(
        engine_for(OFFLINE_PRESET),
        BlurCompositor(20),
        output_size=(img.shape[1], img.shape[0]),
        refiner=make_refiner(PRESETS[OFFLINE_PRESET].refine),
        warmup=WARMUP_RUNS,
        on_alpha=lambda _f, a: got.append(a.copy()),
    )
    stages.render(stages.matte(stages.prepare(Frame(img, 0, 0.0))))
    return got[0]


def cut_out(img: np.ndarray, alpha: np.ndarray, threshold: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``img`` and ``alpha`` cropped to the box of the pixels whose alpha is over ``threshold``."""
    rows, cols = np.where(alpha.max(axis=1) > threshold)[0], np.where(alpha.max(axis=0) > threshold)[0]
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return img[box].copy(), alpha[box].copy()
