"""A real photograph of a person that a PyPI package ships, for the matting tests a plain clone
runs (no evaluation data): scikit-image's ``astronaut`` (Eileen Collins, NASA; public domain,
"no known copyright restrictions" in scikit-image's ``skimage.data.astronaut`` docstring), the
512x512 RGB file ``skimage/data/astronaut.png`` inside the scikit-image wheel (a dev extra). It
is read straight from the installed files: no network, no import of scikit-image.

The reference regions were drawn by looking at the picture (coordinates in its 512x512 pixels,
``(x0, y0, x1, y1)``, end exclusive): ``PERSON`` boxes lie wholly inside her face and her suit,
``BACKGROUND`` boxes wholly in the backdrop (the grey wall at the top right, the flag at the top
left). Nothing is said about the edges, the hair, the helmet she holds or the shuttle model."""

from __future__ import annotations

from importlib import metadata

import numpy as np

__all__ = ["BACKGROUND", "PERSON", "astronaut", "drifting", "region_values"]

Box = tuple[int, int, int, int]

PERSON: dict[str, Box] = {
    "face": (190, 80, 250, 160),
    "suit": (60, 330, 230, 470),
}
BACKGROUND: dict[str, Box] = {
    "top-right wall": (464, 0, 512, 48),
    "top-left flag": (0, 0, 48, 48),
    "wall above her": (310, 0, 360, 60),
}


def astronaut() -> np.ndarray:
    """The photograph: (512, 512, 3) uint8 RGB."""
    from PIL import Image

    try:
        path = metadata.distribution("scikit-image").locate_file("skimage/data/astronaut.png")
    except metadata.PackageNotFoundError:
        raise RuntimeError(
            "scikit-image is not installed (a dev extra): pip install -e '.[cpu,dev]'"
        ) from None
    with Image.open(str(path)) as im:
        return np.asarray(im.convert("RGB")).copy()


def drifting(n: int, size: int = 448, step: int = 4) -> list[np.ndarray]:
    """``n`` frames of a camera slowly panning over the photograph: ``size``x``size`` crops,
    each ``step`` pixels right and down of the last (the picture moves, the scene stays)."""
    img = astronaut()
    if size > img.shape[0] or (n - 1) * step + size > img.shape[0]:
        raise ValueError(f"{n} frames of {size} px, {step} px apart, do not fit in 512 px")
    return [img[i * step : i * step + size, i * step : i * step + size].copy() for i in range(n)]


def region_values(alpha: np.ndarray, box: Box) -> np.ndarray:
    """The part of ``alpha`` (or a picture: any resolution of the photograph's full frame)
    inside a 512-pixel ``box``."""
    h, w = alpha.shape[:2]
    x0, y0, x1, y1 = box
    return alpha[y0 * h // 512 : y1 * h // 512, x0 * w // 512 : x1 * w // 512]
