"""The frame pipeline: source → matting → compositing → sink, threaded or step by step."""

from vcam.pipeline.buffers import LatestSlot
from vcam.pipeline.pipeline import Pipeline
from vcam.pipeline.stats import Stats

__all__ = ["LatestSlot", "Pipeline", "Stats"]
