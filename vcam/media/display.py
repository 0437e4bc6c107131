"""Display orientation: the matrix a phone stores instead of turning its pixels.

A video shot on its side is usually stored "coded" in landscape with a display matrix that
tells players to turn it. File mode turns such pictures upright for matting and compositing
(the person stands, a background image is upright), then turns the result back and writes
the same matrix, so the output is stored exactly like the input and shows the same way.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["Orientation", "rotation_of"]


def rotation_of(matrix: tuple[int, ...]) -> float | None:
    """Counter-clockwise rotation in degrees (-180, 180] that ``matrix`` applies, None if singular.

    ``matrix`` holds FFmpeg's nine int32 values (16.16 fixed point, 2.30 for the last column),
    row-major; the formula is libavutil's ``av_display_rotation_get``.
    """
    a, b, c, d = (v / 65536.0 for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    s0, s1 = math.hypot(a, c), math.hypot(b, d)
    if s0 == 0.0 or s1 == 0.0:
        return None
    return -math.degrees(math.atan2(b / s1, a / s0)) + 0.0  # + 0.0: no "-0.0"


@dataclass(frozen=True, slots=True)
class Orientation:
    """A stream's display matrix and the quarter turns that bring its pictures upright.

    ``matrix``: the nine int32 values as stored, or None when the input has none.
    ``quarter_turns``: 0..3 counter-clockwise quarter turns (``numpy.rot90``'s ``k``) from
    the coded picture to the upright one; 0 when the matrix is not a plain quarter-turn
    rotation (mirrored or odd angles are then kept as metadata only).
    """

    matrix: tuple[int, ...] | None = None
    quarter_turns: int = 0

    @classmethod
    def from_matrix_bytes(cls, data: bytes | None) -> Orientation:
        """From FFmpeg's 36-byte DISPLAYMATRIX side data (native-endian int32), or None."""
        if not data or len(data) < 36:
            return cls()
        matrix = struct.unpack("=9i", bytes(data[:36]))
        angle = rotation_of(matrix)
        det = matrix[0] * matrix[4] - matrix[1] * matrix[3]
        turns = 0
        if angle is not None and det > 0:
            q = angle / 90.0
            if abs(q - round(q)) < 1e-3:
                turns = round(q) % 4
        return cls(matrix, turns)

    def display_size(self, coded: tuple[int, int]) -> tuple[int, int]:
        """(width, height) of the upright picture for a coded (width, height)."""
        return (coded[1], coded[0]) if self.quarter_turns % 2 else coded

    def upright(self, image: np.ndarray) -> np.ndarray:
        """Coded picture (H, W, C) → upright picture, C-contiguous (the same array when no turn)."""
        if self.quarter_turns == 0:
            return image
        return np.ascontiguousarray(np.rot90(image, self.quarter_turns))

    def coded(self, image: np.ndarray) -> np.ndarray:
        """Upright picture → coded picture, the inverse of :meth:`upright`."""
        if self.quarter_turns == 0:
            return image
        return np.ascontiguousarray(np.rot90(image, -self.quarter_turns))
