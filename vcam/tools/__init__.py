"""Tools: vcam bench, vcam soak and the matting evaluation metrics (scripts/eval.py)."""
