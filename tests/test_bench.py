"""``vcam bench``: one run measures the live pipeline and the bare model, per size and variant."""

import json
import threading
from pathlib import Path

import pytest

from vcam.cli import main
from vcam.pipeline.threads import name_native_thread, thread_cpu_seconds


def test_native_thread_names_and_cpu_times_are_read_back() -> None:
    seen: dict[int, tuple[str, float]] = {}
    done = threading.Event()

    def body() -> None:
        name_native_thread("vcam-probe-long-name")
        sum(i * i for i in range(200_000))  # some CPU time
        seen.update(thread_cpu_seconds())
        done.set()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert done.is_set()
    names = {name for name, _ in seen.values()}
    assert "vcam-probe-long" in names  # the OS keeps 15 bytes
    assert all(cpu >= 0 for _, cpu in seen.values())


def test_bench_reports_pipeline_and_bare_model_per_variant(
    tmp_path: Path, isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    # ONNX Runtime pinned: the thread figures below name its pool thread (the automatic choice may
    # take OpenVINO where it is installed and cheaper)
    rc = main(["bench", "--frames", "20", "--sizes", "320x180", "--model-input", "128x72", "--json", str(out),
               "--runtime", "onnxruntime",
               "--variant", "model.threads=1", "--variant", "model.threads=2;live.alpha=latest"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "== model.threads=1" in text and "== model.threads=2;live.alpha=latest" in text
    assert text.count("CPU ms per frame by thread:") == 2
    rows = json.loads(out.read_text())
    assert [(r["variant"], r["threads"], r["alpha_policy"]) for r in rows] == [
        ("model.threads=1", 1, "wait"), ("model.threads=2;live.alpha=latest", 2, "latest")]
    for r in rows:
        assert r["size"] == [320, 180] and r["model_input"] == [128, 72] and r["frames"] == 20
        assert r["fps"] > 0 and 0 <= r["dropped_pct"] <= 100
        assert r["bare_cpu_ms_per_frame"] > 0 and r["cpu_ms_per_frame"] > 0
        assert r["ratio"] == pytest.approx(r["cpu_ms_per_frame"] / r["bare_cpu_ms_per_frame"], rel=5e-3)
        threads = r["thread_cpu_ms"]
        assert {"vcam-capture", "vcam-matting", "vcam-output"} <= set(threads)
        # the per-thread figures cover frames 1..20 of the same run: they add up to about the total
        assert 0 < sum(threads.values()) < 2 * r["cpu_ms_per_frame"]
        assert r["latency_ms"]["p50"] is not None and r["latency_ms"]["p50"] <= r["latency_ms"]["p95"]
    # two threads: ORT's own worker does part of the inference; with one, the matting thread does
    # all (how much the worker takes depends on the machine's load, so no floor but "some")
    assert rows[1]["thread_cpu_ms"]["onnxruntime pool"] > 0.0
    assert rows[0]["thread_cpu_ms"].get("onnxruntime pool", 0.0) < 0.1


def test_bench_rejects_a_malformed_variant(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--frames", "5", "--sizes", "320x180", "--variant", "threads=1"]) == 1
    assert "expected SECTION.KEY=VALUE" in capsys.readouterr().err
