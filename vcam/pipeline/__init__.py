"""The frame pipeline: a stage kit (prepare → matte → render) and the runners that drive it.

* :mod:`vcam.pipeline.stages`: :class:`Stages`, the per-frame work; no source, sink or thread.
* :mod:`vcam.pipeline.live`: :class:`LiveRunner`, source → stages → sink on three threads,
  latest frame wins (``vcam run``).
* :mod:`vcam.pipeline.ordered`: :func:`run_ordered`, stages on threads joined by bounded
  queues that lose nothing (``vcam process``).
"""

from vcam.pipeline.buffers import LatestSlot
from vcam.pipeline.live import ALPHA_POLICIES, LiveRunner
from vcam.pipeline.stages import Matted, Stages
from vcam.pipeline.stats import Stats

__all__ = ["ALPHA_POLICIES", "LatestSlot", "LiveRunner", "Matted", "Stages", "Stats"]
