"""Whole-command time of ``vcam`` on bad input (and ``--version``): how long a user waits for
the error. Compares vcam trees interleaved in one run (docs/performance.md, "Bad input fails
before numba loads").

    scripts/bench_bad_input.py [--rounds 5] NAME=TREE [NAME=TREE ...]

TREE is a folder holding a ``vcam`` package (a checkout, or ``git archive`` of a commit); each
run is ``python -m vcam ...`` from that folder (an editable install's hook set aside), HOME in a scratch
folder (no user config), the shared numba cache kept. Prints median wall and CPU (user +
system) seconds per command and tree, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "run --source /missing.mp4 --output null": ["run", "--source", "/missing.mp4", "--output", "null"],
    "run --background /missing.png": ["run", "--background", "/missing.png"],
    "run --mode replace --background /missing.png --source testpattern --output null": [
        "run", "--mode", "replace", "--background", "/missing.png", "--source", "testpattern", "--output", "null",
    ],
    "run --output /missing-dir/x.mp4 --source testpattern": [
        "run", "--output", "/missing-dir/x.mp4", "--source", "testpattern",
    ],
    "--version": ["--version"],
}

# ``python -m vcam`` from TREE: an editable install's import hook would otherwise find the
# installed checkout first, so it is taken out (for every tree alike)
_RUN = (
    "import runpy, sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__]\n"
    "sys.path.insert(0, sys.argv.pop(1))\n"
    "sys.argv[0] = 'vcam'\n"
    "runpy.run_module('vcam', run_name='__main__', alter_sys=True)\n"
)


def _once(tree: Path, args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall s, CPU s, exit status) of one ``python -m vcam args``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _RUN, str(tree), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", metavar="NAME=TREE")
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args()
    trees = {name: Path(path).resolve() for name, path in (t.split("=", 1) for t in opts.trees)}
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
        env.update(HOME=home, XDG_RUNTIME_DIR=os.path.join(home, "run"))
        if "NUMBA_CACHE_DIR" not in env:  # the user's numba cache, as an installed vcam uses it
            env["NUMBA_CACHE_DIR"] = str(Path.home() / ".cache" / "vcam" / "numba")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        codes: dict[tuple[str, str], set[int]] = {}
        for _ in range(opts.rounds):
            for label, args in COMMANDS.items():
                for name, tree in trees.items():  # interleaved: each round runs every tree once
                    wall, cpu, rc = _once(tree, args, env)
                    times.setdefault((label, name), []).append((wall, cpu))
                    codes.setdefault((label, name), set()).add(rc)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"median of {opts.rounds} rounds, seconds")
    for label in COMMANDS:
        print(f"vcam {label}")
        for name in trees:
            runs = times[(label, name)]
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"  {name:>8}: wall {wall:.2f}  CPU {cpu:.2f}  exit {sorted(codes[(label, name)])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
