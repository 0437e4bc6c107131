"""``vcam soak``: push many frames through the live pipeline and watch for leaks.

A looping video file (unpaced, as fast as the machine allows) feeds the threaded live
pipeline into a counting null sink. Every ``switch_every`` frames the effect mode changes
(blur → color → replace → off → blur ...), and every ``reload_every`` frames the config file
is read and validated again and the compositor (every third time also the engine) is rebuilt
from it, as a reload does. Resident memory, native thread count and open file descriptors are
sampled after warm-up and at the end.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vcam.app import build_engine
from vcam.compositing import Compositor, make_compositor
from vcam.config import Config, read_yaml, validate_config
from vcam.pipeline import Pipeline
from vcam.sources.file import FileSource

__all__ = ["SoakResult", "process_sample", "run_soak"]

log = logging.getLogger(__name__)
_MODES = ("blur", "color", "replace", "off")


def process_sample() -> dict[str, int]:
    """Resident memory (kB), native threads and open file descriptors of this process (Linux)."""
    vals: dict[str, str] = {}
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        key, _, rest = line.partition(":")
        if rest.split():
            vals[key] = rest.split()[0]
    return {
        "rss_kb": int(vals.get("VmRSS", 0)),
        "threads": int(vals.get("Threads", 0)),
        "fds": len(os.listdir("/proc/self/fd")),
    }


@dataclass
class SoakResult:
    frames: int
    mode_switches: int
    reloads: int
    engine_rebuilds: int
    start: dict[str, int]
    end: dict[str, int]
    samples: list[tuple[int, dict[str, int]]] = field(default_factory=list)

    @property
    def rss_growth_mb(self) -> float:
        return (self.end["rss_kb"] - self.start["rss_kb"]) / 1024.0

    def as_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames, "mode_switches": self.mode_switches, "reloads": self.reloads,
            "engine_rebuilds": self.engine_rebuilds, "start": self.start, "end": self.end,
            "rss_growth_mb": round(self.rss_growth_mb, 2),
            "samples": [{"frame": n, **s} for n, s in self.samples],
        }


class _SoakSink:
    name = "soak"

    def __init__(self, limit: int, stop: threading.Event, every: Callable[[int], None]) -> None:
        self.limit, self.stop, self.every, self.count = limit, stop, every, 0

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        self.count += 1
        self.every(self.count)
        if self.count >= self.limit:
            self.stop.set()

    def close(self) -> None:
        pass


def run_soak(
    cfg: Config,
    config_path: Path,
    clip: Path,
    background: Path,
    *,
    frames: int = 50_000,
    warmup: int = 1_000,
    switch_every: int = 300,
    reload_every: int = 500,
    sample_every: int = 5_000,
) -> SoakResult:
    """Run the soak; ``config_path`` is re-read on every reload (it must stay valid)."""
    size, fps = cfg.output_size, cfg.output_fps
    source = FileSource(clip, loop=True, pace=False, what="soak clip")
    stop = threading.Event()
    state = {"mode": 0, "switches": 0, "reloads": 0, "rebuilds": 0}
    samples: list[tuple[int, dict[str, int]]] = []
    start: dict[str, int] = {}

    def compositor_for(mode: str, base: Config) -> Compositor:
        effect = base.effect.model_copy(update={"mode": mode, "background": str(background)})
        return make_compositor(effect, size, fps)

    # the pipeline holds the only reference to its engine, so a replaced engine can be freed
    pipe = Pipeline(source, build_engine(cfg), compositor_for("blur", cfg), None, output_size=size)  # type: ignore[arg-type]
    end: dict[str, int] = {}

    def every(n: int) -> None:
        if n == warmup:
            start.update(process_sample())
        if n % sample_every == 0:
            samples.append((n, process_sample()))
        if n == frames:  # sampled while running, like the start sample
            end.update(process_sample())
        if n % switch_every == 0:
            state["mode"] = (state["mode"] + 1) % len(_MODES)
            pipe.set_compositor(compositor_for(_MODES[state["mode"]], cfg))
            state["switches"] += 1
        if n % reload_every == 0:
            fresh = validate_config(read_yaml(config_path), str(config_path))
            pipe.set_compositor(compositor_for(_MODES[state["mode"]], fresh))
            state["reloads"] += 1
            if state["reloads"] % 3 == 0:
                pipe.set_engine(build_engine(fresh))
                state["rebuilds"] += 1

    sink = _SoakSink(frames, stop, every)
    pipe.sink = sink
    try:
        pipe.run(stop)
    finally:
        source.close()
    return SoakResult(sink.count, state["switches"], state["reloads"], state["rebuilds"], start or process_sample(),
                      end or process_sample(), samples)


def soak_media(folder: Path, size: tuple[int, int]) -> tuple[Path, Path]:
    """A short test-pattern clip and a background image in ``folder``."""
    from PIL import Image

    from vcam.bench import make_clip

    clip = make_clip(folder / "soak.mp4", size, frames=60)
    bg = folder / "bg.png"
    Image.fromarray(np.full((size[1], size[0], 3), (30, 90, 160), np.uint8)).save(bg)
    return clip, bg


def default_soak(cfg: Config, config_path: Path | None, frames: int, **kw: int) -> SoakResult:
    """Soak with generated media; writes ``cfg`` to a temporary config file when none is given."""
    import yaml

    with tempfile.TemporaryDirectory(prefix="vcam-soak-") as tmp:
        folder = Path(tmp)
        clip, bg = soak_media(folder, cfg.output_size)
        if config_path is None:
            config_path = folder / "config.yaml"
            data = cfg.model_dump(mode="json")
            config_path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return run_soak(cfg, config_path, clip, bg, frames=frames, **kw)
