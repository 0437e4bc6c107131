"""``vcam soak``: push many frames through the live pipeline and watch for leaks.

A looping video file (unpaced, as fast as the machine allows) feeds the threaded live
pipeline into a counting null sink, driven by the same :class:`~vcam.live.control.Controller` the
tray, ``vcam ctl`` and hot reload use. Every ``switch_every`` frames the effect mode changes
(blur → replace → color → off → blur ..., the order of ``config.MODES``); every
``reload_every`` frames the config file is edited and reloaded (the blur strength changes; every third edit also changes the model's
downsample ratio, so the engine is rebuilt). Resident memory, native thread count and open
file descriptors are sampled after warm-up and at the end, both while frames flow.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from vcam.build import build_live_engine
from vcam.compositing import make_compositor
from vcam.config import MODES, Config, read_yaml, validate_config
from vcam.pipeline import LiveRunner, Stages
from vcam.sinks.null import CountingSink
from vcam.sources.file import FileSource

__all__ = ["SoakResult", "process_sample", "run_soak"]

log = logging.getLogger(__name__)


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



def run_soak(
    cfg: Config,
    config_path: Path,
    clip: Path,
    *,
    frames: int = 50_000,
    warmup: int = 1_000,
    switch_every: int = 300,
    reload_every: int = 500,
    sample_every: int = 5_000,
) -> SoakResult:
    """Run the soak. ``config_path`` is rewritten on each reload from ``cfg`` (which must name
    a replace background in ``effect.background``)."""
    from vcam.live.control import Controller

    size = cfg.output_size
    source = FileSource(clip, loop=True, pace=False, what="soak clip")
    stop = threading.Event()
    state = {"mode": 0, "switches": 0, "reloads": 0, "rebuilds": 0}
    samples: list[tuple[int, dict[str, int]]] = []
    start: dict[str, int] = {}
    end: dict[str, int] = {}

    def write_config(n: int) -> None:
        data = cfg.model_dump(mode="json")
        data["effect"]["blur_strength"] = 10 + n % 2 * 10
        data["model"]["downsample_ratio"] = [0.5, 0.4][n // 3 % 2]
        config_path.write_text(yaml.safe_dump(data), encoding="utf-8")

    write_config(0)
    first = validate_config(read_yaml(config_path), str(config_path))
    stages = Stages(build_live_engine(first), make_compositor(first.effect, size, cfg.output_fps), output_size=size)
    controller = Controller(
        stages, first, stop=stop, config_path=config_path,
        load_config=lambda: validate_config(read_yaml(config_path), str(config_path)),
        build_engine=build_live_engine,
    )

    def every(n: int) -> None:
        if n == warmup:
            start.update(process_sample())
        if n % sample_every == 0:
            samples.append((n, process_sample()))
        if n == frames:  # sampled while running, like the start sample
            end.update(process_sample())
        if n % switch_every == 0:
            state["mode"] = (state["mode"] + 1) % len(MODES)
            controller.set_mode(MODES[state["mode"]])
            state["switches"] += 1
        if n % reload_every == 0:
            state["reloads"] += 1
            write_config(state["reloads"])
            changed = controller.reload()
            if "model" in changed:
                state["rebuilds"] += 1

    sink = CountingSink(frames, stop, every)
    try:
        LiveRunner(source, stages, sink).run(stop)
    finally:
        controller.close()
        source.close()
    return SoakResult(sink.count, state["switches"], state["reloads"], state["rebuilds"], start or process_sample(),
                      end or process_sample(), samples)


def soak_media(folder: Path, size: tuple[int, int]) -> tuple[Path, Path]:
    """A short test-pattern clip and a background image in ``folder``."""
    from PIL import Image

    from vcam.tools.bench import make_clip

    clip = make_clip(folder / "soak.mp4", size, frames=60)
    bg = folder / "bg.png"
    Image.fromarray(np.full((size[1], size[0], 3), (30, 90, 160), np.uint8)).save(bg)
    return clip, bg


def default_soak(cfg: Config, frames: int, **kw: int) -> SoakResult:
    """Soak with generated media and a config file in a temporary folder, based on ``cfg``."""
    with tempfile.TemporaryDirectory(prefix="vcam-soak-") as tmp:
        folder = Path(tmp)
        clip, bg = soak_media(folder, cfg.output_size)
        cfg = cfg.model_copy(update={"effect": cfg.effect.model_copy(update={"background": str(bg)})})
        return run_soak(cfg, folder / "config.yaml", clip, frames=frames, **kw)
