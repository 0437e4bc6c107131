"""Named quality presets: model input size + downsample ratio + alpha refinement.

Chosen from the measured sweep in ``docs/quality.md`` (run with ``scripts/eval.py``):
``realtime`` fits the live 33 ms frame budget on a 2-core CPU; ``offline`` is what
``vcam process`` uses by default, where time per frame matters less than the matte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["LIVE_LADDER", "LIVE_PRESET", "OFFLINE_PRESET", "PRESETS", "DESIGNED_DEFAULT", "WARMUP_RUNS", "Preset", "PresetName", "RefineMethod"]

RefineMethod = Literal["bilinear", "guided", "band"]
PresetName = Literal["realtime", "offline"]


@dataclass(frozen=True, slots=True)
class Preset:
    """``input_size`` (width, height) the frame is resized to for the model; ``downsample_ratio``
    (the encoder runs at input_size * ratio); ``refine``: how alpha is brought to output size;
    ``still``: the still-frame reuse threshold (:mod:`vcam.pipeline.still`; 0 = off)."""

    input_size: tuple[int, int]
    downsample_ratio: float
    refine: RefineMethod
    still: float = 0.0

    @property
    def label(self) -> str:
        """``"still4:384x216@0.5/band"``: the form scripts/eval.py and docs/quality.md use."""
        still = f"still{self.still:g}:" if self.still else ""
        return f"{still}{self.input_size[0]}x{self.input_size[1]}@{self.downsample_ratio:g}/{self.refine}"


PRESETS: dict[str, Preset] = {
    "realtime": Preset((384, 216), 0.5, "band", still=4.0),
    "offline": Preset((768, 432), 0.5, "guided"),
}
LIVE_PRESET: PresetName = "realtime"
OFFLINE_PRESET: PresetName = "offline"
# File mode: extra model runs on the first frame after a reset, so that frame gets a settled
# state's matte (docs/quality.md, "First frames").
WARMUP_RUNS = 8
# The foundation's original default (encoder 64x36): kept as the evaluation's reference.
DESIGNED_DEFAULT = Preset((256, 144), 0.25, "bilinear")
# The model input sizes `vcam run` chooses from by measurement (``model.runtime: auto``, see
# vcam/matting/choice.py), smallest first; the first is the realtime preset's own.
LIVE_LADDER: tuple[tuple[int, int], ...] = ((384, 216), (448, 252), (512, 288))
