"""Matting evaluation: the metrics of ``../shared/evaldata/README.md`` (used by scripts/eval.py)."""

from vcam.tools.evaluation.metrics import ClipScorer, clip_metrics, gradient_magnitude, luma

__all__ = ["ClipScorer", "clip_metrics", "gradient_magnitude", "luma"]
