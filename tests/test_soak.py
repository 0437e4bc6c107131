"""The short soak: 2,000 frames through the live pipeline with mode switches and reloads."""

import pytest

from vcam.config import validate_config
from vcam.tools.soak import default_soak


@pytest.mark.usefixtures("isolated_home")
def test_short_soak_leaks_no_threads_fds_or_memory() -> None:
    cfg = validate_config({"camera": {"size": [160, 96]}, "model": {"input_size": [128, 72], "providers": ["cpu"]}})
    res = default_soak(cfg, 2_000, warmup=400, switch_every=150, reload_every=250, sample_every=200)
    assert res.frames == 2_000
    # the model ratio changes on reloads 3 (0.5 -> 0.4) and 6 (back to 0.5): two engine rebuilds
    assert (res.mode_switches, res.reloads, res.engine_rebuilds) == (13, 8, 2)
    first, second = res.samples[: len(res.samples) // 2], res.samples[len(res.samples) // 2 :]
    # native threads come and go (an old ONNX Runtime pool right after an engine swap); a
    # leak raises the floor, which transient extras cannot lower: compare the minimums
    assert min(s["threads"] for _, s in second) <= min(s["threads"] for _, s in first)
    # a leak adds descriptors; one open at the start may close later (seen in a CI simulation,
    # 2026-12-03: 31 at the start, 30 in one sample), which is not a leak
    assert max(s["fds"] for _, s in res.samples) <= res.start["fds"]
    assert res.rss_growth_mb <= 20.0
