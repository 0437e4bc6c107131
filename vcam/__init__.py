"""vcam: a real-time virtual webcam that blurs or replaces the background (Robust Video Matting)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
