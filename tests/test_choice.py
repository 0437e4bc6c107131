"""The measured runtime / precision / input-size choice, with injected timings (no wall clock)."""

import json
import logging
from pathlib import Path

import pytest

from vcam.config import validate_config
from vcam.errors import ModelError
from vcam.matting import choice as ch
from vcam.matting.choice import Budget, Candidate, Timing

ORT = Candidate("onnxruntime", "f32")
OVB = Candidate("openvino", "bf16")
OVF = Candidate("openvino", "f32")
LADDER = ((384, 216), (448, 252), (512, 288))


class Table:
    """measure() from a table of CPU ms per (label, width); wall = CPU; records every call."""

    def __init__(self, cpu: dict[tuple[str, int], float]) -> None:
        self.cpu, self.calls = cpu, []

    def __call__(self, c: Candidate, size: tuple[int, int]) -> Timing:
        self.calls.append((c.label, size[0]))
        v = self.cpu[(c.label, size[0])]
        return Timing(v, v)


def _fixed_clock():
    return 0.0


# 30 fps, 0.6 cores, 6 ms outside the model: 14 ms CPU for the model, 25 ms wall
BUDGET = Budget(30.0, 0.6, 6.0)


def test_budget_arithmetic() -> None:
    assert (BUDGET.model_cpu_ms, BUDGET.model_wall_ms) == (pytest.approx(14.0), pytest.approx(25.0))
    assert BUDGET.fits(Timing(14.0, 25.0)) and not BUDGET.fits(Timing(14.01, 1.0))
    # the latency is judged by the CPU time: a wall time inflated by other load does not count
    assert BUDGET.fits(Timing(10.0, 49.0))
    wide = Budget(30.0, 2.0, 6.0)  # 60.7 ms of CPU, but a call must still fit 25 ms
    assert wide.fits(Timing(25.0, 25.0)) and not wide.fits(Timing(25.01, 25.01))


def test_largest_rung_that_fits_with_the_cheapest_runtime() -> None:
    t = Table({("onnxruntime-f32", 384): 19.7, ("openvino-bf16", 384): 9.0, ("openvino-bf16", 512): 15.0,
               ("openvino-bf16", 448): 13.5})
    c = ch.choose_live([ORT, OVB], LADDER, BUDGET, t, clock=_fixed_clock)
    assert (c.candidate, c.input_size, c.fits) == (OVB, (448, 252), True)
    # both at the base rung, then the winner from the top down; ORT never measured above the base
    assert t.calls == [("onnxruntime-f32", 384), ("openvino-bf16", 384), ("openvino-bf16", 512), ("openvino-bf16", 448)]
    assert c.reason.startswith("openvino-bf16 at 448x252: 13.5 ms CPU per call (13.5 ms wall), within the budget of 14.0 ms CPU")
    assert c.reason.endswith("at 384x216: openvino-bf16 9.0, onnxruntime-f32 19.7 ms CPU")


def test_top_rung_fits_and_nothing_else_is_measured() -> None:
    t = Table({("onnxruntime-f32", 384): 5.0, ("openvino-bf16", 384): 6.0, ("onnxruntime-f32", 512): 12.0})
    c = ch.choose_live([ORT, OVB], LADDER, BUDGET, t, clock=_fixed_clock)
    assert (c.candidate, c.input_size) == (ORT, (512, 288))
    assert len(t.calls) == 3


def test_another_runtime_must_be_ten_percent_cheaper_than_onnxruntime() -> None:
    near = Table({("onnxruntime-f32", 384): 32.7, ("openvino-f32", 384): 32.2})
    assert ch.choose_live([ORT, OVF], LADDER, BUDGET, near, clock=_fixed_clock).candidate == ORT
    clear = Table({("onnxruntime-f32", 384): 32.7, ("openvino-f32", 384): 29.6})
    assert ch.choose_live([ORT, OVF], LADDER, BUDGET, clear, clock=_fixed_clock).candidate == OVF


def test_nothing_fits_gives_the_smallest_rung_and_the_cheapest_runtime() -> None:
    t = Table({("onnxruntime-f32", 384): 30.0, ("openvino-bf16", 384): 20.0})
    c = ch.choose_live([ORT, OVB], LADDER, BUDGET, t, clock=_fixed_clock)
    assert (c.candidate, c.input_size, c.fits) == (OVB, (384, 216), False)
    assert "over the budget of 14.0 ms CPU" in c.reason
    assert len(t.calls) == 2


def test_larger_rungs_are_skipped_when_the_time_limit_would_be_passed() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def measure(c: Candidate, size: tuple[int, int]) -> Timing:
        now[0] += 0.8  # every measurement takes 0.8 s
        return Timing(5.0, 5.0)

    c = ch.choose_live([ORT, OVB], LADDER, BUDGET, measure, limit_s=2.0, clock=clock)
    # both base measurements always run (1.6 s); a third would likely end past 2 s
    assert (c.input_size, now[0]) == ((384, 216), 1.6)
    assert c.reason.endswith("; larger rungs not measured within 2 s")


def test_known_timings_are_not_measured_again() -> None:
    t = Table({})
    known = {"onnxruntime-f32@384x216": Timing(19.0, 19.0), "openvino-bf16@384x216": Timing(9.0, 9.0),
             "openvino-bf16@512x288": Timing(20.0, 20.0), "openvino-bf16@448x252": Timing(13.0, 13.0)}
    c = ch.choose_live([ORT, OVB], LADDER, BUDGET, t, known=known, clock=_fixed_clock)
    assert (c.candidate, c.input_size, t.calls) == (OVB, (448, 252), [])


def test_offline_picks_the_least_cpu_at_the_fixed_size() -> None:
    walls = {"onnxruntime-f32": Timing(80.0, 30.0), "openvino-bf16": Timing(62.0, 31.0)}
    c = ch.choose_offline([ORT, OVB], (768, 432), lambda cand, s: walls[cand.label], clock=_fixed_clock)
    assert (c.candidate, c.input_size) == (OVB, (768, 432))
    assert c.reason == "openvino-bf16 at 768x432: fastest, 62.0 ms CPU per call (against onnxruntime-f32 80.0 ms)"


@pytest.mark.parametrize(("runtime", "precision", "ov", "expected"), [
    ("auto", "auto", ("f32", "bf16"), [ORT, OVB]),
    ("auto", "auto", ("f32",), [ORT, OVF]),
    ("auto", "auto", None, [ORT]),
    ("auto", "f32", ("f32", "bf16"), [ORT, OVF]),
    ("auto", "bf16", ("f32", "bf16"), [OVB]),
    ("auto", "bf16", ("f32",), []),
    ("openvino", "auto", ("f32", "bf16"), [OVB]),
    ("onnxruntime", "auto", ("f32", "bf16"), [ORT]),
    ("openvino", "auto", None, []),
])
def test_candidates_honour_the_pins(runtime, precision, ov, expected) -> None:
    assert ch.candidates(runtime, precision, openvino=ov) == expected


def test_ladder_follows_the_picture_aspect() -> None:
    assert ch.ladder_for(LADDER, (1280, 720)) == LADDER
    assert ch.ladder_for(LADDER, (640, 480)) == ((384, 288), (448, 336), (512, 384))
    assert ch.ladder_for(((320, 240),), (640, 480)) == ((320, 240),)  # already not 16:9: kept


def test_cpu_identity_reads_model_name_and_sorted_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: sse2 avx512_bf16 avx2\n\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: sse2 avx512_bf16 avx2\n")
    assert ch.cpu_identity(info) == ("AMD EPYC", "avx2 avx512_bf16 sse2")


# --- plan_engine: config -> plan, with the cache ----------------------------------------------


def _cfg(**model):
    return validate_config({"model": model} if model else {}, "test")


def _plan(cfg, cache: Path, table: Table, ov=("f32", "bf16"), live=True):
    return ch.plan_engine(cfg, Path("model.onnx"), "abc123", cache, live=live, measure=table, native=lambda: ov)


FAST = {("onnxruntime-f32", 384): 19.0, ("openvino-bf16", 384): 9.0, ("openvino-bf16", 512): 20.0,
        ("openvino-bf16", 448): 13.0, ("openvino-f32", 384): 15.0, ("onnxruntime-f32", 448): 26.0,
        ("onnxruntime-f32", 512): 33.0, ("openvino-f32", 448): 21.0, ("openvino-f32", 512): 27.0}


@pytest.fixture(autouse=True)
def _no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ch, "_gpu_first", lambda providers: False)


def test_plan_caches_timings_and_a_second_start_measures_nothing(tmp_path: Path, caplog) -> None:
    cache = tmp_path / "calibration.json"
    cfg = _cfg()
    # budget 0.6 cores at 30 fps less 2.9 + 4.9 x 0.9216 = 7.4 ms at 720p: 12.6 ms for the model
    first = Table(FAST)
    with caplog.at_level(logging.INFO, logger="vcam.matting.choice"):
        p1 = _plan(cfg, cache, first)
    assert (p1.candidate, p1.input_size, p1.threads) == (OVB, (384, 216), 1)
    assert len(first.calls) == 4
    assert [m for m in caplog.messages if m.startswith("runtime choice (live): openvino-bf16 at 384x216")]
    entry = next(iter(json.loads(cache.read_text())["entries"].values()))
    assert entry["parts"]["model_sha256"] == "abc123" and entry["parts"]["candidates"] == ["onnxruntime-f32", "openvino-bf16"]
    again = Table(FAST)
    p2 = _plan(cfg, cache, again)
    assert (p2.candidate, p2.input_size, again.calls, p2.cached) == (OVB, (384, 216), [], True)
    # a larger budget needs one more rung only: the rest comes from the cache
    more = Table(FAST)
    p3 = _plan(validate_config({"live": {"cpu_budget": 0.7}}, "test"), cache, more)
    assert (p3.input_size, more.calls) == ((448, 252), [])  # 448 was measured on the way down already


BUSY = {k: round(v * 1.6, 1) for k, v in FAST.items()}  # the same machine under load


def test_a_cache_made_on_a_busy_machine_is_measured_again(tmp_path: Path, caplog) -> None:
    cache = tmp_path / "calibration.json"
    cfg = validate_config({"live": {"cpu_budget": 0.7}}, "test")  # 15.9 ms CPU for the model at 720p
    first = _plan(cfg, cache, Table(BUSY))
    assert (first.input_size, first.cached) == ((384, 216), False)  # 448: 20.8 ms, over the budget
    p = _plan(cfg, cache, Table(FAST))
    assert p.cached and p.input_size == (384, 216)
    # busy now too (the engine takes as long as cached): the cache stands
    assert not ch.stale(p, Timing(14.0, 14.0))
    with caplog.at_level(logging.INFO, logger="vcam.matting.choice"):
        assert ch.stale(p, Timing(9.0, 9.0))  # 9.0 ms now against 14.4 cached: under 75 %
    assert any("taken on a busier machine (openvino-bf16 at 384x216: 9.0 ms CPU per call now, 14.4 cached)" in m
               for m in caplog.messages)
    quiet = Table(FAST)
    again = ch.plan_engine(cfg, Path("model.onnx"), "abc123", cache, live=True, measure=quiet,
                           native=lambda: ("f32", "bf16"), remeasure=True)
    assert again.input_size == (448, 252) and len(quiet.calls) > 1 and not again.cached  # measured afresh: it fits
    entry = next(iter(json.loads(cache.read_text())["entries"].values()))
    assert entry["timings"]["openvino-bf16@384x216"]["cpu_ms"] == 9.0  # the cache now holds the quiet figures
    assert not ch.stale(_plan(cfg, cache, Table(FAST)), Timing(13.0, 13.0))  # 448 as cached: it stands


def test_a_change_in_the_key_measures_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "calibration.json"
    _plan(_cfg(), cache, Table(FAST))
    monkeypatch.setattr(ch, "cpu_identity", lambda: ("Another CPU", "avx2"))
    t = Table(FAST)
    _plan(_cfg(), cache, t)
    assert len(t.calls) == 4
    assert len(json.loads(cache.read_text())["entries"]) == 2
    t2 = Table(FAST)
    _plan(_cfg(), cache, t2, ov=("f32",))  # another candidate set: bf16 gone
    assert ("openvino-f32", 384) in t2.calls


def test_forget_removes_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "calibration.json"
    _plan(_cfg(), cache, Table(FAST))
    assert ch.forget(cache) is True and not cache.exists()
    assert ch.forget(cache) is False
    t = Table(FAST)
    _plan(_cfg(), cache, t)
    assert len(t.calls) == 4


def test_an_unreadable_cache_is_a_miss(tmp_path: Path) -> None:
    cache = tmp_path / "calibration.json"
    cache.write_text("{not json")
    t = Table(FAST)
    _plan(_cfg(), cache, t)
    assert len(t.calls) == 4 and "entries" in json.loads(cache.read_text())


def test_pins_are_honoured_without_measuring(tmp_path: Path) -> None:
    t = Table(FAST)
    p = _plan(_cfg(runtime="onnxruntime", input_size=[448, 252]), tmp_path / "c.json", t)
    assert (p.candidate, p.input_size, p.choice, t.calls) == (ORT, (448, 252), None, [])
    p = _plan(_cfg(runtime="openvino", precision="f32", input_sizes=[[512, 288]]), tmp_path / "c.json", t)
    assert (p.candidate, p.input_size, t.calls) == (OVF, (512, 288), [])


def test_a_pinned_runtime_still_climbs_the_ladder(tmp_path: Path) -> None:
    t = Table(FAST)
    p = _plan(_cfg(runtime="onnxruntime"), tmp_path / "c.json", t, ov=None)
    assert (p.candidate, p.input_size) == (ORT, (384, 216))  # 19 ms is over the 12.6 ms budget
    assert t.calls == [("onnxruntime-f32", 384)]
    assert p.threads == 1  # over the CPU budget, but one thread's 19 ms CPU fits the 25 ms frame share


def test_a_call_longer_than_the_frame_share_leaves_the_threads_to_the_engine(tmp_path: Path) -> None:
    t = Table({("onnxruntime-f32", 384): 30.0})
    p = _plan(_cfg(runtime="onnxruntime"), tmp_path / "c.json", t, ov=None)
    assert (p.input_size, p.threads) == ((384, 216), 0)
    assert _plan(_cfg(runtime="onnxruntime", threads=2), tmp_path / "c.json", t, ov=None).threads == 2  # a pin wins


def test_offline_preset_picks_by_throughput_and_realtime_matches_run(tmp_path: Path) -> None:
    off = Table({**FAST, ("onnxruntime-f32", 768): 45.0, ("openvino-bf16", 768): 31.0})
    p = _plan(_cfg(preset="offline"), tmp_path / "c.json", off, live=False)
    assert (p.candidate, p.input_size) == (OVB, (768, 432))
    assert p.choice is not None and p.choice.reason.startswith("openvino-bf16 at 768x432: fastest")
    run = _plan(_cfg(), tmp_path / "c.json", Table(FAST), live=True)
    process_rt = _plan(_cfg(preset="realtime"), tmp_path / "c.json", Table(FAST), live=False)
    assert (process_rt.candidate, process_rt.input_size) == (run.candidate, run.input_size)


def test_impossible_pins_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"^model.runtime: openvino is not installed; in the vcam folder: pip install '\.\[cpu,openvino\]', or use model.runtime: auto$"):
        _plan(_cfg(runtime="openvino"), tmp_path / "c.json", Table(FAST), ov=None)
    with pytest.raises(ModelError, match=r"^model.precision: bf16 is not native on this CPU \(OpenVINO runs f32\); use f32 or auto$"):
        _plan(_cfg(precision="bf16"), tmp_path / "c.json", Table(FAST), ov=("f32",))


# --- vcam run --recalibrate -------------------------------------------------------------------


def test_run_recalibrate_removes_the_cache_and_a_plain_run_keeps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model_path: Path, isolated_home: Path
) -> None:
    from tests.helpers.cli import run_cli
    from tests.helpers.media import color_frames, write_video

    models = tmp_path / "models"
    models.mkdir()
    (models / model_path.name).symlink_to(model_path)
    cache = models / ch.CACHE_NAME
    video = write_video(tmp_path / "in.mp4", color_frames(6, (160, 90)), 30)
    # every choice pinned: nothing is measured, so nothing writes the cache again
    run = ["run", "--source", str(video), "--output", "null", "--duration", "0.3", "--no-tray",
           "--runtime", "onnxruntime", "--model-input", "128x72"]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model:\n  dir: {models}\n")
    cache.write_text('{"entries": {}}\n')
    code, _, err = run_cli(capsys, *run, "--config", str(cfg))
    assert code == 0, err
    assert cache.read_text() == '{"entries": {}}\n'
    code, _, err = run_cli(capsys, *run, "--config", str(cfg), "--recalibrate")
    assert code == 0, err
    assert not cache.exists()


def test_a_live_start_on_a_stale_cache_measures_again_with_the_real_model(tmp_path: Path, model_path: Path, caplog) -> None:
    """The real model, ONNX Runtime pinned (two input sizes left free): a cache whose timings
    are three times what the engine takes now (made on a busy machine) is measured again at
    the next live start; a cache that is right is used as it is."""
    from vcam import build

    cfg = validate_config({"model": {"path": str(model_path), "dir": str(tmp_path), "runtime": "onnxruntime",
                                     "input_sizes": [[64, 36], [128, 72]], "threads": 1}}, "test")
    cache = build.calibration_cache(cfg)
    build.build_engine(cfg, live=True)
    data = json.loads(cache.read_text())
    (entry,) = data["entries"].values()
    right = dict(entry["timings"])
    for t in entry["timings"].values():
        t["cpu_ms"] = round(t["cpu_ms"] * 3, 2)
    cache.write_text(json.dumps(data))
    with caplog.at_level(logging.INFO, logger="vcam.matting.choice"):
        build.build_engine(cfg, live=True)
    assert [m for m in caplog.messages if "the cached timings were taken on a busier machine" in m]
    (entry,) = json.loads(cache.read_text())["entries"].values()
    for k, t in entry["timings"].items():  # measured afresh: near the first figures, not three times them
        assert t["cpu_ms"] < 2 * right[k]["cpu_ms"], (k, t, right[k])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vcam.matting.choice"):
        build.build_engine(cfg, live=True)
    assert not [m for m in caplog.messages if "busier machine" in m]
    assert [m for m in caplog.messages if "from the cache" in m]
