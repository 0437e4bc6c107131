"""vcam: a real-time virtual webcam that blurs or replaces the background (Robust Video Matting)."""

# OpenCV must be loaded before PyAV. Both wheels bundle libxcb-shm under the same hashed file
# name; whichever loads first is reused by the other. PyAV's copy is linked against PyAV's own
# libxcb, and OpenCV's Qt (the preview window) then deadlocks in its first X request.
import cv2  # noqa: F401

__version__ = "0.1.0"
__all__ = ["__version__"]
