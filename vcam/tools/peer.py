"""``vcam bench --peer lfbw``: CPU per frame against Linux-Fake-Background-Webcam in one run.

A thin wrapper of the project's side-by-side harness (``shared/peers/lfbw/side_by_side.sh``, see
its README): it plays the same clip, looped and paced, into lfbw (MediaPipe, blur) and into
``vcam run --output null``, alternating the order each round, and writes ``all.json``. This
module finds the script, passes vcam's model and effect flags on as ``VCAM_ARGS``, runs it, and
adds one line: the medians of CPU ms per frame over the run window and their ratio.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vcam.errors import InputError

__all__ = ["PEERS", "PeerSummary", "find_script", "run_peer", "summarize"]

PEERS = ("lfbw",)
ENV_SCRIPT = "VCAM_PEER_LFBW"
_RELATIVE = Path("..") / "shared" / "peers" / "lfbw" / "side_by_side.sh"


@dataclass(frozen=True)
class PeerSummary:
    """Medians over the rounds of the run-window CPU ms per frame, FPS and frames out."""

    rounds: int
    vcam_cpu_ms: float
    peer_cpu_ms: float
    vcam_fps: float
    peer_fps: float

    @property
    def ratio(self) -> float:
        return self.vcam_cpu_ms / self.peer_cpu_ms

    def line(self) -> str:
        return (f"CPU ms per frame (run window, median of {self.rounds} rounds): vcam {self.vcam_cpu_ms:.1f} "
                f"at {self.vcam_fps:.1f} fps, lfbw {self.peer_cpu_ms:.1f} at {self.peer_fps:.1f} fps: "
                f"vcam / lfbw = {self.ratio:.2f}x")


def find_script(given: str | None, env: Mapping[str, str], cwd: Path) -> Path:
    """The harness: ``--peer-script``, else ``$VCAM_PEER_LFBW``, else ``../shared/peers/lfbw/
    side_by_side.sh`` from the current folder (the project's checkouts sit beside ``shared``)."""
    for candidate, what in ((given, "--peer-script"), (env.get(ENV_SCRIPT), f"${ENV_SCRIPT}")):
        if candidate:
            p = Path(candidate).expanduser()
            if not p.is_file():
                raise InputError(f"{what} {p}: no such file; give the path of lfbw's side_by_side.sh")
            return p
    p = cwd / _RELATIVE
    if not p.is_file():
        raise InputError(f"the lfbw side-by-side harness is not at {p}; give its path with --peer-script "
                         f"or ${ENV_SCRIPT}")
    return p


def summarize(rows: Sequence[Mapping[str, object]]) -> PeerSummary:
    """The summary of the harness's ``all.json`` rows (one per tool and round)."""

    def med(tool: str, key: str) -> float:
        values = [float(r[key]) for r in rows if r.get("tool") == tool]  # type: ignore[arg-type]
        if not values:
            raise InputError(f"the side-by-side results have no {tool} rounds")
        return float(statistics.median(values))

    rounds = sum(1 for r in rows if r.get("tool") == "vcam")
    return PeerSummary(rounds, med("vcam", "cpu_ms_per_frame_window"), med("lfbw", "cpu_ms_per_frame_window"),
                       med("vcam", "fps"), med("lfbw", "fps"))


def run_peer(
    script: Path, clip: Path, *, rounds: int, duration: float, vcam_args: Sequence[str], out: Path | None = None
) -> PeerSummary:
    """Run the harness (its table goes to our stdout) and summarize its ``all.json``."""
    if not clip.is_file():
        raise InputError(f"--clip {clip}: no such video file (the peer comparison needs a clip, e.g. a 1280x720 comp)")
    with tempfile.TemporaryDirectory(prefix="vcam-peer-") as tmp:
        folder = out or Path(tmp)
        env = {**os.environ, "VCAM_ARGS": shlex.join(vcam_args)}
        cmd = ["bash", str(script), "-c", str(clip), "-r", str(rounds), "-d", f"{duration:g}", "-o", str(folder)]
        done = subprocess.run(cmd, env=env, check=False)
        if done.returncode != 0:
            raise InputError(f"the side-by-side harness {script} failed (exit {done.returncode}); see its output above")
        try:
            rows = json.loads((folder / "all.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"the side-by-side harness wrote no readable {folder / 'all.json'} ({exc})") from exc
    return summarize(rows)
