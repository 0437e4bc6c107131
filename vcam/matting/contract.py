"""The Robust Video Matting ONNX contract (opset 12), checked against a loaded session.

Inputs:  ``src`` float32 [B,3,H,W] RGB 0..1; ``r1i``..``r4i`` float32 recurrent state
(zeros of shape [1,1,1,1] to start); ``downsample_ratio`` float32 [1].
Outputs: ``fgr`` [B,3,H,W]; ``pha`` [B,1,H,W] alpha 0..1; ``r1o``..``r4o`` next state, whose
shapes depend on H and W.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ALPHA", "INITIAL_STATE_SHAPE", "INPUTS", "OUTPUTS", "RATIO", "SOURCE", "STATE_IN", "STATE_OUT", "missing_names"]

SOURCE = "src"
RATIO = "downsample_ratio"
STATE_IN = ("r1i", "r2i", "r3i", "r4i")
STATE_OUT = ("r1o", "r2o", "r3o", "r4o")
ALPHA = "pha"
INPUTS = (SOURCE, *STATE_IN, RATIO)
OUTPUTS = ("fgr", ALPHA, *STATE_OUT)
INITIAL_STATE_SHAPE = (1, 1, 1, 1)


def missing_names(inputs: Iterable[str], outputs: Iterable[str]) -> list[str]:
    """Names the contract needs that a session lacks, as ``input X`` / ``output Y`` lines."""
    have_in, have_out = set(inputs), set(outputs)
    missing = [f"input {n}" for n in INPUTS if n not in have_in]
    missing += [f"output {n}" for n in (ALPHA, *STATE_OUT) if n not in have_out]
    return missing
