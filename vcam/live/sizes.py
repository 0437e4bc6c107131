"""Sizes a live run takes from its source: a video file used as the camera keeps its own."""

from __future__ import annotations

import logging
from pathlib import Path

from vcam.build import TEST_PATTERN
from vcam.config import Config

__all__ = ["follow_file_source"]

log = logging.getLogger(__name__)


def follow_file_source(cfg: Config, *, announce: bool = True) -> tuple[Config, bool]:
    """A video file as the camera keeps its own size and frame rate: ``camera.size`` and
    ``camera.fps`` become the file's unless the config or the command line set them (a
    640x480 clip was scaled to 1280x720 and cropped to 16:9). Odd sizes are rounded down to
    even ones, which every video app accepts. Returns the config and whether the source is a
    file (whose picture is then letterboxed, never cropped, into a fixed output size).
    ``announce``: say so at info level (at start; a reload says it at debug level)."""
    dev = cfg.camera.device
    if not isinstance(dev, str) or dev.strip().isdigit() or dev == TEST_PATTERN or dev.startswith("/dev/"):
        return cfg, False
    path = Path(dev).expanduser()
    if not path.is_file():
        return cfg, False  # open_source says what is wrong with it
    from vcam.media.reader import VideoReader

    reader = VideoReader(path, "source video")
    try:
        (w, h), fps = reader.size, reader.fps
    finally:
        reader.close()
    given = cfg.camera.model_fields_set
    update: dict[str, object] = {}
    if "size" not in given:
        update["size"] = (max(16, w - w % 2), max(16, h - h % 2))
    if "fps" not in given and 0 < fps <= 240:
        update["fps"] = fps
    if update:
        cfg = cfg.model_copy(update={"camera": cfg.camera.model_copy(update=update)})
        log.log(logging.INFO if announce else logging.DEBUG,
                "source %s: %dx%d @ %g fps, its own size and rate (--size and --fps change them)", path, w, h, fps)
    return cfg, True
