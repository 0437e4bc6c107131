"""Matting: the RVM model contract, model files (fetch + verify) and the ONNX Runtime engine."""

from vcam.matting.engine import MattingEngine, available_cores
from vcam.matting.models import KNOWN_MODELS, ModelSpec, ensure_model, list_models

__all__ = [
    "KNOWN_MODELS",
    "MattingEngine",
    "ModelSpec",
    "available_cores",
    "ensure_model",
    "list_models",
]
