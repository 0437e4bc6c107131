"""Named quality presets: model input size + downsample ratio + alpha refinement.

Chosen from the measured sweep in ``docs/quality.md`` (run with ``scripts/eval.py``):
``realtime`` fits the live 33 ms frame budget on a 2-core CPU; ``offline`` is what
``vcam process`` uses by default, where time per frame matters less than the matte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["LIVE_LADDER", "LIVE_PRESET", "OFFLINE_PRESET", "PRESETS", "DESIGNED_DEFAULT", "Preset", "PresetName", "RefineMethod"]

RefineMethod = Literal["bilinear", "guided"]
PresetName = Literal["realtime", "offline"]


@dataclass(frozen=True, slots=True)
class Preset:
    """``input_size`` (width, height) the frame is resized to for the model; ``downsample_ratio``
    (the encoder runs at input_size * ratio); ``refine``: how alpha is brought to output size."""

    input_size: tuple[int, int]
    downsample_ratio: float
    refine: RefineMethod

    @property
    def label(self) -> str:
        """``"384x216@0.5/bilinear"``: the form scripts/eval.py and docs/quality.md use."""
        return f"{self.input_size[0]}x{self.input_size[1]}@{self.downsample_ratio:g}/{self.refine}"


PRESETS: dict[str, Preset] = {
    "realtime": Preset((384, 216), 0.5, "bilinear"),
    "offline": Preset((768, 432), 0.5, "guided"),
}
LIVE_PRESET: PresetName = "realtime"
OFFLINE_PRESET: PresetName = "offline"
# The foundation's original default (encoder 64x36): kept as the evaluation's reference.
DESIGNED_DEFAULT = Preset((256, 144), 0.25, "bilinear")
# The model input sizes `vcam run` chooses from by measurement (``model.runtime: auto``, see
# vcam/matting/choice.py), smallest first; the first is the realtime preset's own.
LIVE_LADDER: tuple[tuple[int, int], ...] = ((384, 216), (448, 252), (512, 288))
