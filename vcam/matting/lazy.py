"""An engine that loads its model on first use (:class:`LazyMatter`): ``vcam run --mode off``
starts without loading (or fetching) the model; the first switch to an effect loads it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from vcam.config import Config
from vcam.matting import Matter

__all__ = ["LazyMatter", "lazy_if_off"]

log = logging.getLogger(__name__)


class LazyMatter:
    """A :class:`~vcam.matting.Matter` that calls ``load()`` the first time a frame needs
    alpha (``shrink`` or ``infer``, on the matting thread) and then is that engine.

    Before that it reports the configured ``input_size``, ``downsample_ratio``, ``threads``,
    ``runtime`` and ``precision`` and the provider ``"none (model not loaded)"``. A load that fails raises its
    error to the caller (the matting thread: the run stops with the error, as a failed start
    would) and is tried again on the next call."""

    NOT_LOADED = "none (model not loaded)"

    def __init__(self, load: Callable[[], Matter], *, input_size: tuple[int, int], downsample_ratio: float,
                 threads: int, runtime: str = "auto", precision: str = "auto") -> None:
        self._load = load
        self._runtime, self._precision = runtime, precision
        self._engine: Matter | None = None
        self._lock = threading.Lock()
        self._input_size, self._ratio, self._threads = input_size, downsample_ratio, threads

    @property
    def loaded(self) -> Matter | None:
        return self._engine

    def _get(self) -> Matter:
        with self._lock:
            if self._engine is None:
                log.info("loading the model (first use of an effect)")
                self._engine = self._load()
            return self._engine

    @property
    def input_size(self) -> tuple[int, int]:
        return self._engine.input_size if self._engine is not None else self._input_size

    @property
    def provider(self) -> str:
        return self._engine.provider if self._engine is not None else self.NOT_LOADED

    @property
    def runtime(self) -> str:  # before loading: as configured ("auto": chosen when it loads)
        return self._engine.runtime if self._engine is not None else self._runtime

    @property
    def precision(self) -> str:
        return self._engine.precision if self._engine is not None else self._precision

    @property
    def threads(self) -> int:
        return self._engine.threads if self._engine is not None else self._threads

    @property
    def downsample_ratio(self) -> float:
        return self._engine.downsample_ratio if self._engine is not None else self._ratio

    def reset(self) -> None:
        if self._engine is not None:
            self._engine.reset()

    def shrink(self, rgb: np.ndarray) -> np.ndarray:
        return self._get().shrink(rgb)

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        return self._get().infer(rgb)


def lazy_if_off(cfg: Config, load: Callable[[], Matter]) -> Matter:
    """``load()`` now, or with ``effect.mode: off`` a :class:`LazyMatter` that calls it only
    when a frame first needs alpha (a later switch to an effect)."""
    if cfg.effect.mode != "off":
        return load()
    m = cfg.model
    return LazyMatter(load, input_size=m.input_size, downsample_ratio=m.downsample_ratio, threads=m.threads,
                      runtime=m.runtime, precision=m.precision)
