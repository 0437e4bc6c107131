"""Matting: the engine protocol (:class:`Matter`), the RVM model contract, model files (fetch +
verify), the ONNX Runtime engine, the OpenVINO engine (:mod:`vcam.matting.openvino_engine`,
optional) and the measured choice between them (:mod:`vcam.matting.choice`).

A new matting runtime is a class beside :mod:`vcam.matting.engine` that satisfies
:class:`Matter`; :func:`vcam.build.build_engine` is where a config picks it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from vcam.matting.engine import MattingEngine, available_cores
from vcam.matting.models import KNOWN_MODELS, ModelSpec, ensure_model, list_models

__all__ = [
    "KNOWN_MODELS",
    "Matter",
    "MattingEngine",
    "ModelSpec",
    "available_cores",
    "ensure_model",
    "list_models",
]


class Matter(Protocol):
    """What the pipeline, the controller, bench and stats need from any matting engine.

    The engine keeps a temporal (recurrent) state from call to call, so frames must arrive in
    time order, one stream per engine; ``reset()`` when the next frame does not continue the
    last one (a scene cut, a new camera, a new input size).

    * ``input_size``: (width, height) of the picture the model sees; ``infer`` returns alpha of
      that size.
    * ``provider``: the runtime or device that actually runs, for logs and stats (``"cpu"``,
      ``"cuda"``, ``"tensorrt"``, a fake's name).
    * ``runtime``: the inference library (``"onnxruntime"``, ``"openvino"``, a fake's name).
    * ``precision``: the arithmetic it was asked for (``"f32"``, ``"bf16"``).
    * ``threads``: intra-op threads the engine uses (1 for a fake).
    * ``downsample_ratio``: the model's encoder scale relative to ``input_size``, in (0, 1].
    """

    @property
    def input_size(self) -> tuple[int, int]: ...

    @property
    def provider(self) -> str: ...

    @property
    def runtime(self) -> str: ...

    @property
    def precision(self) -> str: ...

    @property
    def threads(self) -> int: ...

    @property
    def downsample_ratio(self) -> float: ...

    def reset(self) -> None:
        """Forget the temporal state: the next frame is treated as the first of a scene."""

    def shrink(self, rgb: np.ndarray) -> np.ndarray:
        """The frame as the model sees it: (H, W, 3) uint8 RGB of any size in, (h, w, 3) uint8
        RGB at ``input_size`` out (the frame itself when it has that size already)."""

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        """Alpha of one frame: (H, W, 3) uint8 RGB in (any size, or already :meth:`shrink`-ed);
        (h, w) float32 in 0..1 at ``input_size`` out (1 = person). Advances the state."""
