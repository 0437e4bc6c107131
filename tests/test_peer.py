"""vcam bench --peer lfbw: finding the harness, running it, and reading its all.json."""

import json
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from vcam.errors import InputError
from vcam.tools import peer

ROWS = [
    {"tool": "lfbw", "round": 1, "cpu_ms_per_frame_window": 21.6, "fps": 30.0},
    {"tool": "vcam", "round": 1, "cpu_ms_per_frame_window": 25.9, "fps": 29.9},
    {"tool": "lfbw", "round": 2, "cpu_ms_per_frame_window": 22.0, "fps": 30.0},
    {"tool": "vcam", "round": 2, "cpu_ms_per_frame_window": 26.9, "fps": 30.0},
    {"tool": "lfbw", "round": 3, "cpu_ms_per_frame_window": 21.8, "fps": 29.8},
    {"tool": "vcam", "round": 3, "cpu_ms_per_frame_window": 26.6, "fps": 30.0},
]


def test_summary_is_the_median_of_the_rounds_and_their_ratio() -> None:
    s = peer.summarize(ROWS)
    assert (s.rounds, s.vcam_cpu_ms, s.peer_cpu_ms, s.vcam_fps, s.peer_fps) == (3, 26.6, 21.8, 30.0, 30.0)
    assert s.line() == ("CPU ms per frame (run window, median of 3 rounds): vcam 26.6 at 30.0 fps, "
                        "lfbw 21.8 at 30.0 fps: vcam / lfbw = 1.22x")


def test_missing_tool_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"^the side-by-side results have no lfbw rounds$"):
        peer.summarize([r for r in ROWS if r["tool"] == "vcam"])


def test_the_script_is_found_by_flag_env_or_beside_the_checkout(tmp_path: Path) -> None:
    script = tmp_path / "shared" / "peers" / "lfbw" / "side_by_side.sh"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    checkout = tmp_path / "vcam"
    checkout.mkdir()
    assert peer.find_script(None, {}, checkout) == checkout / ".." / "shared" / "peers" / "lfbw" / "side_by_side.sh"
    assert peer.find_script(None, {"VCAM_PEER_LFBW": str(script)}, tmp_path) == script
    assert peer.find_script(str(script), {}, tmp_path) == script
    with pytest.raises(InputError, match=r"^--peer-script /nope: no such file; give the path of lfbw's side_by_side.sh$"):
        peer.find_script("/nope", {}, checkout)
    with pytest.raises(InputError, match=r"^the lfbw side-by-side harness is not at .*; give its path with --peer-script or \$VCAM_PEER_LFBW$"):
        peer.find_script(None, {}, tmp_path)


def _fake_harness(tmp_path: Path) -> Path:
    """A stand-in with the harness's interface: -c CLIP -r N -d S -o DIR; writes DIR/all.json and
    records the VCAM_ARGS it was given."""
    script = tmp_path / "side_by_side.sh"
    rows = json.dumps(ROWS)
    script.write_text(
        "#!/usr/bin/env bash\nset -e\nwhile getopts c:r:d:o: o; do case $o in o) OUT=$OPTARG;; r) R=$OPTARG;; esac; done\n"
        f"mkdir -p \"$OUT\"\necho \"$VCAM_ARGS|$R\" > {tmp_path}/args.txt\necho 'tool round ...'\n"
        f"cat > \"$OUT/all.json\" <<'EOF'\n{rows}\nEOF\n"
    )
    return script


def test_bench_peer_runs_the_harness_and_prints_the_ratio(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    script = _fake_harness(tmp_path)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read by the fake")
    out = tmp_path / "peer.json"
    code, stdout, stderr = run_cli(capfd, "bench", "--peer", "lfbw", "--peer-script", str(script), "--clip", str(clip),
                                   "--rounds", "5", "--runtime", "onnxruntime", "--model-input", "448x252",
                                   "--json", str(out))
    assert code == 0, stderr
    assert "tool round ..." in stdout  # the harness's own table is shown
    assert stdout.splitlines()[-1] == ("CPU ms per frame (run window, median of 3 rounds): vcam 26.6 at 30.0 fps, "
                                           "lfbw 21.8 at 30.0 fps: vcam / lfbw = 1.22x")
    assert (tmp_path / "args.txt").read_text() == "--model-input 448x252 --runtime onnxruntime|5\n"
    assert json.loads(out.read_text())["ratio"] == 1.22


def test_bench_peer_needs_a_clip(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = run_cli(capfd, "bench", "--peer", "lfbw", "--peer-script", str(_fake_harness(tmp_path)))
    assert code == 1
    assert stderr.strip().endswith("--peer lfbw needs --clip VIDEO (e.g. a 1280x720 comp clip from shared/evaldata/build.py)")
