"""The frame as the matting model saw it, handed to compositors that can work at that size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LowRes"]


@dataclass(frozen=True, slots=True)
class LowRes:
    """The model's input picture and its alpha, both at the model input size.

    ``image``: (h, w, 3) uint8 RGB, the frame shrunk (and, for another aspect ratio than the
    model's, stretched) to the model input size; ``alpha``: (h, w) float32 0..1.
    Compositors that only need a smooth result (the blur) use it instead of reading the
    full-size frame again.
    """

    image: np.ndarray
    alpha: np.ndarray
