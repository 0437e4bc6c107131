"""Signals at any moment: every command that writes, x SIGINT / SIGTERM / SIGHUP (issue 17).

Each row of the matrix prepares a user area in tmp_path (inputs, a ``notes.txt`` beside the
outputs, an unrelated file, a config), snapshots it (every path with its sha256), runs the
real ``vcam`` in a subprocess (HOME and XDG folders in tmp_path), waits until the command is
really at work (its hidden temporary output exists, its socket answers, its download is under
way), waits a seeded random delay more, sends the signal and waits for the exit (a hang is a
failure). Then the invariants:

- the exit status is the one in :data:`EXPECTED` (``0`` is accepted only when the command had
  already finished before the signal was sent; for the millisecond-long install-service, death
  by the signal itself only when it came after the work with every output complete, or before
  vcam's handlers were installed with nothing at all touched — the shell reports both as
  128 + the signal's number, as vcam itself would);
- no user file changed or removed, except the outputs the command was told to replace, and
  those are the old ones or complete new ones;
- nothing new but the outputs it was told to write, each absent or complete (the video
  decodes with every frame, the matte folder holds every frame, the model verifies, the unit
  is the whole unit), and no ``.part`` or other hidden temporary file anywhere;
- for ``vcam run``: the control socket is removed and the recording kept;
- for ``--jobs``: no worker process outlives the command.

The default run tries one random moment per cell; ``pytest -m slow tests/test_fault_matrix.py``
tries :data:`SLOW_POINTS` more, over a wider window. ``VCAM_FAULT_SEED`` changes the seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO
from tests.helpers.media import count_frames, write_clip
from tests.helpers.tlsproxy import SlowProxy, make_ca
from vcam.matting.models import KNOWN_MODELS, sha256_of
from vcam.setup.service import render_unit, service_command

# The one table of expected outcomes (issue 17's exit-code decision). An integrator changing
# what a signal means changes it here. RELOADS: the daemon keeps running (SIGHUP = reload
# the config); the test then stops it with SIGINT and expects 130.
RELOADS = "keeps running"
_STOPS = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}
EXPECTED: dict[str, dict[str, int | str]] = {
    "process": dict(_STOPS),
    "process-overwrite": dict(_STOPS),
    "process-jobs": dict(_STOPS),
    # vcam run: Ctrl-C exits 130 (pressed again and again while it stops, too: SIGINT-repeated);
    # SIGTERM is a clean stop and exits 0 (vcam.signals.DaemonSignals sets the stop event and
    # run_live returns normally).
    "run": {"SIGINT": 130, "SIGINT-repeated": 130, "SIGTERM": 0, "SIGHUP": RELOADS},
    "models-fetch": dict(_STOPS),
    "models-fetch-connecting": dict(_STOPS),
    "install-service": dict(_STOPS),
    "install-service-force": dict(_STOPS),
}

SLOW_POINTS = 4
_SEED = os.environ.get("VCAM_FAULT_SEED", "17")
_WAIT_S = 180.0  # for a point to be reached, and for the exit after the signal: generous on a loaded machine
_FRAMES = 60  # input length: at ~4 fps on a loaded 2-core machine the run is far from done when signalled
_SPEC = KNOWN_MODELS["rvm_mobilenetv3_fp32"]
_IMPORTED = "fault-matrix: imports done\n"
_STARTED = "fault-matrix: entry()\n"


@dataclasses.dataclass
class Case:
    """One command ready to run: its argv (after ``vcam``), environment, the moment to wait
    for, and what it may leave behind."""

    argv: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]
    # The outputs it was told to write (a file, or a folder with everything in it), as
    # "root/relative path" -> check of the complete output (None: complete). An output that
    # exists beforehand is one it was told to replace (--overwrite, --force).
    outputs: dict[str, Callable[[Path], str | None]]
    new_dirs: set[str] = dataclasses.field(default_factory=set)  # folders it may create on the way
    # files it keeps on purpose outside the user area: the daemon's lock (vcam/live/control_socket.py
    # lock_daemon; removing it at exit would race with the next daemon taking it)
    state_files: set[str] = dataclasses.field(default_factory=set)
    socket: Path | None = None
    window: tuple[float, float] = (0.0, 1.5)  # random delay after ready(), in seconds
    # install-service is done in milliseconds: it is started as "import vcam.cli, say so on
    # stderr, wait for a line on stdin, say so again, vcam.cli.entry()" and the delay counts
    # from the second line (a signal during Python's own imports or while the harness holds
    # it meets the default action, not vcam). A signal
    # that lands when the work is done (after main() returned, or on the exiting process)
    # may end it with 0 or the default action: accepted only with every output complete.
    after_imports: bool = False


class Log:
    """The subprocess's stderr, read on a thread (no pipe can fill up and stall it)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        self._stream = proc.stderr
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, name="test-stderr", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for block in iter(lambda: self._stream.read1(65536), b""):
            self._chunks.append(block)

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")

    def join(self) -> str:
        self._thread.join(30)
        return self.text()


# --- the user area -----------------------------------------------------------------------------


def _area(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """(user area, runtime folder, environment): HOME, XDG folders and the model folder."""
    area = tmp_path / "area"
    home = area / "home"
    (home / ".config" / "vcam").mkdir(parents=True)
    (home / ".config" / "vcam" / "config.yaml").write_text("effect:\n  mode: blur\n")
    (home / ".cache").mkdir()
    (area / "unrelated.txt").write_text("not vcam's\n")
    # A Unix socket path has at most 107 bytes: the runtime folder is short, outside tmp_path.
    runtime = Path(tempfile.mkdtemp(prefix="vcam-fm-", dir="/tmp"))
    env = dict(os.environ)
    for k in ("VCAM_MODEL_DIR", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
              "SSL_CERT_FILE", "SSL_CERT_DIR"):
        env.pop(k, None)
    env.update(
        HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(runtime), PYTHONUNBUFFERED="1",
    )
    return area, runtime, env


def _clip(path: Path, n: int = _FRAMES, shade: int = 0) -> Path:
    frames = [np.full((180, 320, 3), (shade + 3 * i) % 256, np.uint8) for i in range(n)]
    return write_clip(path, frames, rate=25, audio=None)


def _hidden_in(folder: Path) -> bool:
    return folder.is_dir() and any(p.name.startswith(".") for p in folder.iterdir())


def _video(frames: int) -> Callable[[Path], str | None]:
    def check(path: Path) -> str | None:
        try:
            n = count_frames(path)[0]
        except Exception as exc:
            return f"not a readable video ({exc})"
        return None if n == frames else f"{n} frames, expected {frames}"

    return check


def _recording(path: Path) -> str | None:
    try:
        n = count_frames(path)[0]
    except Exception as exc:
        return f"not a readable video ({exc})"
    return None if n > 0 else "no frames"


def _mattes(frames: int) -> Callable[[Path], str | None]:
    want = [f"{i:06d}.png" for i in range(frames)]

    def check(folder: Path) -> str | None:
        names = sorted(p.name for p in folder.iterdir())
        if names != want:
            return f"{len(names)} files, expected {want[0]} ... {want[-1]}"
        bad = [n for n in names if (folder / n).read_bytes()[:8] != b"\x89PNG\r\n\x1a\n"]
        return f"not PNG: {bad[:3]}" if bad else None

    return check


def _model(path: Path) -> str | None:
    return None if sha256_of(path) == _SPEC.sha256 else "sha256 mismatch"


def _unit(path: Path) -> str | None:
    return None if path.read_text() == render_unit(service_command(None, sys.executable)) else "not the whole unit"


def _case_process(tmp_path: Path, ctx: Context) -> Case:
    area, _runtime, env = _area(tmp_path)
    env["VCAM_MODEL_DIR"] = str(ctx.model_dir)
    clip = _clip(area / "in.mp4")
    out = area / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    (out / "m").mkdir()  # an empty folder made for the mattes: it may stay empty, never vanish
    return Case(
        ["process", str(clip), "-o", str(out / "o.mp4"), "--matte-out", str(out / "m")], env,
        ready=lambda: _hidden_in(out),
        outputs={"area/out/o.mp4": _video(_FRAMES), "area/out/m": _mattes(_FRAMES)},
    )


def _case_process_overwrite(tmp_path: Path, ctx: Context) -> Case:
    """--overwrite: the old output and the old matte folder are replaced only by complete new ones."""
    area, _runtime, env = _area(tmp_path)
    env["VCAM_MODEL_DIR"] = str(ctx.model_dir)
    clip = _clip(area / "in.mp4")
    out = area / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    _clip(out / "o.mp4", 5, shade=100)
    (out / "m").mkdir()
    for i in range(3):
        (out / "m" / f"{i:06d}.png").write_bytes(b"\x89PNG\r\n\x1a\nold")
    return Case(
        ["process", str(clip), "-o", str(out / "o.mp4"), "--matte-out", str(out / "m"), "--overwrite"], env,
        ready=lambda: _hidden_in(out),
        outputs={"area/out/o.mp4": _video(_FRAMES), "area/out/m": _mattes(_FRAMES)},
    )


def _case_process_jobs(tmp_path: Path, ctx: Context) -> Case:
    area, _runtime, env = _area(tmp_path)
    env["VCAM_MODEL_DIR"] = str(ctx.model_dir)
    clips = [_clip(area / f"in{i}.mp4", shade=40 * i) for i in range(2)]
    out = area / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    (area / "m").mkdir()  # the user's folder for the mattes, with a file of theirs in it
    (area / "m" / "notes.txt").write_text("my matte notes\n")
    return Case(
        ["process", *map(str, clips), "-o", f"{out}/", "--jobs", "2", "--matte-out", str(area / "m")], env,
        ready=lambda: _hidden_in(out),
        outputs={
            "area/out/in0.mp4": _video(_FRAMES), "area/out/in1.mp4": _video(_FRAMES),
            "area/m/in0": _mattes(_FRAMES), "area/m/in1": _mattes(_FRAMES),
        },
    )


def _case_run(tmp_path: Path, ctx: Context) -> Case:
    area, runtime, env = _area(tmp_path)
    env["VCAM_MODEL_DIR"] = str(ctx.model_dir)
    config = area / "home" / ".config" / "vcam" / "config.yaml"
    sock = runtime / "vcam" / "control.sock"
    return Case(
        ["run", "--source", "testpattern", "--size", "640x360", "--no-tray", "--config", str(config),
         "--output", str(area / "rec.mp4")], env,
        ready=lambda: sock.exists() and _hidden_in(area),
        outputs={"area/rec.mp4": _recording}, new_dirs={"runtime/vcam"}, socket=sock,
        state_files={"runtime/vcam/daemon.lock"},
    )


def _case_models(tmp_path: Path, ctx: Context, *, hold: bool) -> Case:
    area, _runtime, env = _area(tmp_path)
    folder = area / "models"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes\n")
    proxy = ctx.proxy(hold=hold)
    env.update(HTTPS_PROXY=proxy.url, https_proxy=proxy.url, SSL_CERT_FILE=str(ctx.ca))
    ready = proxy.connected.is_set if hold else (lambda: proxy.sent >= 256 * 1024)
    return Case(
        ["models", "fetch", "--dir", str(folder)], env, ready=ready,
        outputs={f"area/models/{_SPEC.filename}": _model},
    )


def _case_install(tmp_path: Path, ctx: Context, *, force: bool) -> Case:
    """The signal lands at a random time after the imports (the whole command takes some
    milliseconds); tests/test_service.py interrupts install_service at every line in turn."""
    area, _runtime, env = _area(tmp_path)
    units = area / "home" / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    (units / "other.service").write_text("[Unit]\nDescription=not vcam's\n")
    if force:
        (units / "vcam.service").write_text("[Unit]\nDescription=the old vcam unit\n")
    return Case(
        ["install-service", *(["--force"] if force else [])], env, ready=lambda: True,
        outputs={"area/home/.config/systemd/user/vcam.service": _unit}, window=(0.0, 0.004), after_imports=True,
    )


COMMANDS: dict[str, Callable[[Path, Context], Case]] = {
    "process": _case_process,
    "process-overwrite": _case_process_overwrite,
    "process-jobs": _case_process_jobs,
    "run": _case_run,
    "models-fetch": lambda p, c: _case_models(p, c, hold=False),
    "models-fetch-connecting": lambda p, c: _case_models(p, c, hold=True),
    "install-service": lambda p, c: _case_install(p, c, force=False),
    "install-service-force": lambda p, c: _case_install(p, c, force=True),
}
assert set(COMMANDS) == set(EXPECTED)


# --- shared pieces ----------------------------------------------------------------------------


class Context:
    """What the rows share: the real model, the CA for the proxy, the proxies to close."""

    def __init__(self, model_dir: Path, ca: tuple[Path, Path, Path]) -> None:
        self.model_dir = model_dir
        self.ca, self._cert, self._key = ca
        self._proxies: list[SlowProxy] = []

    def proxy(self, *, hold: bool) -> SlowProxy:
        body = (self.model_dir / _SPEC.filename).read_bytes()
        p = SlowProxy(self._cert, self._key, body, hold=hold)
        self._proxies.append(p)
        return p

    def close(self) -> None:
        for p in self._proxies:
            p.close()


@pytest.fixture(scope="module")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test CA for the models fetch rows")
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def ctx(model_dir: Path, tls_ca: tuple[Path, Path, Path]) -> Iterator[Context]:
    c = Context(model_dir, tls_ca)
    yield c
    c.close()


def _snapshot(roots: dict[str, Path]) -> dict[str, str]:
    """Every path under the roots (as ``root/relative``): ``dir``, ``link:TARGET``, ``sock``
    or the file's sha256."""
    snap: dict[str, str] = {}
    for label, root in roots.items():
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                p = Path(dirpath) / name
                rel = f"{label}/{p.relative_to(root)}"
                if any(rel == t or rel.startswith(t + "/") for t in _THIRD_PARTY):
                    continue
                if p.is_symlink():
                    snap[rel] = f"link:{os.readlink(p)}"
                elif p.is_dir():
                    snap[rel] = "dir"
                elif p.is_socket():
                    snap[rel] = "sock"
                else:
                    try:
                        snap[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
                    except OSError as exc:  # vanished while walking (a running command's temp file)
                        snap[rel] = f"error:{exc.strerror}"
    return snap


# Not vcam's: ONNX Runtime keeps a device id and a small database in ~/.cache/Microsoft/
# (DeveloperTools/.onnxruntime/) the first time a session is made. It is left out of the
# comparison, named here so that nothing else is.
_THIRD_PARTY = ("area/home/.cache/Microsoft",)


def _is_temp(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name.startswith(".") or ".part" in name or name.endswith(".tmp")


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    kids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.add(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait(cond: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes] | None = None, poll: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc is not None and proc.poll() is not None:
            return cond()
        time.sleep(poll)
    return False


def _keeps_running(proc: subprocess.Popen[bytes], log: Log, case: Case) -> None:
    """SIGHUP to the daemon: it reloads, still runs and still answers on its socket."""
    from vcam.live.control_socket import Request, send_request

    reloaded = _wait(lambda: "reloading config file" in log.text(), _WAIT_S, proc)
    assert reloaded and proc.poll() is None, f"SIGHUP did not reload a running daemon (exit {proc.poll()}):\n{log.text()[-3000:]}"
    assert case.socket is not None
    status = send_request(Request("status", None), case.socket)
    assert status["mode"] == "blur"


# --- one cell ---------------------------------------------------------------------------------


def _run_cell(tmp_path: Path, ctx: Context, command: str, sig_name: str, point: int, window_scale: float = 1.0) -> str:
    case = COMMANDS[command](tmp_path, ctx)
    expected = EXPECTED[command][sig_name]
    rng = random.Random(f"{_SEED}:{command}:{sig_name}:{point}")
    runtime = Path(case.env["XDG_RUNTIME_DIR"])
    roots = {"area": tmp_path / "area", "runtime": runtime}
    before = _snapshot(roots)
    repeated = sig_name == "SIGINT-repeated"  # Ctrl-C, then again every ~0.1 s until it has exited (at most 5 s)
    signals = [signal.SIGINT] if repeated else [getattr(signal, sig_name)]
    if case.after_imports:
        # imported, then held until the test says go (a line on stdin): the delay counts from there
        code = ("import sys; import vcam.cli; sys.stderr.write(_MARK); sys.stderr.flush(); sys.stdin.readline(); "
                "sys.stderr.write(_GO); sys.stderr.flush(); vcam.cli.entry()")
        code = code.replace("_MARK", repr(_IMPORTED)).replace("_GO", repr(_STARTED))
        argv = [sys.executable, "-c", code, *case.argv]
    else:
        argv = [sys.executable, "-m", "vcam", *case.argv]
    proc = subprocess.Popen(argv, cwd=REPO, env=case.env, stdin=subprocess.PIPE if case.after_imports else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = Log(proc)
    workers: set[int] = set()
    try:
        reached = _wait(lambda: (not case.after_imports or _IMPORTED in log.text()) and case.ready(), _WAIT_S, proc,
                        poll=0.002 if case.after_imports else 0.05)
        assert reached, f"{command}: the moment to signal was never reached (exit {proc.poll()}):\n{log.text()[-3000:]}"
        delay = rng.uniform(case.window[0], case.window[1] * window_scale)
        if proc.stdin is not None:
            proc.stdin.write(b"go\n")
            proc.stdin.close()
            _wait(lambda: _STARTED in log.text(), _WAIT_S, proc, poll=0.001)
        time.sleep(delay)
        workers = _children(proc.pid)
        finished_first = proc.poll() is not None
        if proc.poll() is None:
            proc.send_signal(signals[0])
        if repeated:
            until = time.monotonic() + 5.0
            time.sleep(rng.uniform(0.0, 0.1))
            while proc.poll() is None and time.monotonic() < until:
                proc.send_signal(signal.SIGINT)
                time.sleep(rng.uniform(0.05, 0.15))
        if expected == RELOADS and not finished_first:
            _keeps_running(proc, log, case)
            proc.send_signal(signal.SIGINT)
            expected = 130
        try:
            proc.wait(timeout=_WAIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{command} x {sig_name}: still running {_WAIT_S:.0f} s after the signal (a hang)")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        ctx.close()
    err = log.join()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()  # now, not at some later garbage collection (the soak test counts fds)
    where = f"{command} x {sig_name} (signal {delay:.2f} s after the point, seed {_SEED}, point {point})"
    problems: list[str] = []
    rc = proc.returncode
    if finished_first:
        outcome = f"finished first (exit {rc})"
        if rc != 0:
            problems.append(f"exit {rc} before any signal")
    else:
        outcome = f"exit {rc}"
        late = case.after_imports and rc in (0, -signals[-1]) and all(
            (roots[o.split("/", 1)[0]] / o.split("/", 1)[1]).exists() and check(roots[o.split("/", 1)[0]] / o.split("/", 1)[1]) is None
            for o, check in case.outputs.items()
        )
        now = _snapshot(roots)
        early = case.after_imports and rc == -signals[-1] and now == before
        if late:  # the signal came when the work was done: too late to matter
            outcome += " (signal after the work was done: outputs complete)"
        elif early:  # in the microseconds from the harness's entry() line to vcam's handlers
            outcome += " (signal before vcam's handlers were in: nothing touched)"
        elif rc != expected:
            problems.append(f"exit {rc}, expected {expected}" + (f" (killed by {signal.Signals(-rc).name})" if rc < 0 else ""))
    # outlived workers: wait a while, then kill them so they do not run on
    if workers and not _wait(lambda: not any(_alive(w) for w in workers), 30):
        left = sorted(w for w in workers if _alive(w))
        problems.append(f"worker processes {left} still running after the command exited")
        for w in left:
            os.kill(w, signal.SIGKILL)
    after = _snapshot(roots)

    def under(rel: str, out: str) -> bool:
        return rel == out or rel.startswith(out + "/")

    def output_of(rel: str) -> str | None:
        return next((out for out in case.outputs if under(rel, out)), None)

    for rel, value in before.items():
        if output_of(rel) is not None:
            continue  # an output it was told to replace: judged below
        if rel not in after:
            problems.append(f"user path removed: {rel}")
        elif after[rel] != value:
            problems.append(f"user file changed: {rel}")
    for rel in sorted(set(after) - set(before)):
        parts = rel.split("/")
        if any(_is_temp("/".join(parts[:i])) for i in range(2, len(parts))):
            continue  # inside a temporary folder: that folder is reported
        if case.socket is not None and roots["runtime"] / rel.partition("/")[2] == case.socket:
            continue  # the control socket: reported below
        if _is_temp(rel):
            problems.append(f"temporary file left: {rel}")
        elif output_of(rel) is None and rel not in case.new_dirs | case.state_files:
            problems.append(f"unexpected new path: {rel}")
    # each output: as it was (not written, or the old one kept), or complete
    for out, check in case.outputs.items():
        old = {r: v for r, v in before.items() if under(r, out)}
        new = {r: v for r, v in after.items() if under(r, out)}
        if new == old:
            continue
        root, _, rel = out.partition("/")
        if out not in new:
            problems.append(f"output removed, nothing in its place: {out}")
        else:
            why = check(roots[root] / rel)
            if why is not None:
                problems.append(f"incomplete output {out}: {why}" + (" (it replaced a complete old one)" if old else ""))
    if case.socket is not None and (case.socket.exists() or case.socket.is_symlink()):
        problems.append(f"control socket left: {case.socket}")
    shutil.rmtree(runtime, ignore_errors=True)
    print(f"MATRIX {command} {sig_name} point={point} delay={delay:.2f}s -> {outcome}: "
          + ("ok" if not problems else "; ".join(problems)))
    assert not problems, f"{where}: " + "; ".join(problems) + f"\nstderr (end):\n{err[-2000:]}"
    return outcome


CELLS = [(command, sig) for command, row in EXPECTED.items() for sig in row]
# The default run: every command x signal once, but the --overwrite variant of process and the
# Ctrl-C of --jobs (also in tests/test_process_cli.py) only in the slow run (time: ~10 s a cell).
_SLOW_ONLY = {("process-overwrite", "SIGINT"), ("process-overwrite", "SIGTERM"), ("process-overwrite", "SIGHUP"),
              ("process-jobs", "SIGINT")}
DEFAULT_CELLS = [cell for cell in CELLS if cell not in _SLOW_ONLY]


@pytest.mark.parametrize(("command", "sig_name"), DEFAULT_CELLS, ids=[f"{c}-{s}" for c, s in DEFAULT_CELLS])
def test_signal_at_a_random_moment(tmp_path: Path, ctx: Context, command: str, sig_name: str) -> None:
    _run_cell(tmp_path, ctx, command, sig_name, 0)


@pytest.mark.slow
@pytest.mark.parametrize("point", range(1, SLOW_POINTS + 1))
@pytest.mark.parametrize(("command", "sig_name"), CELLS, ids=[f"{c}-{s}" for c, s in CELLS])
def test_signal_at_more_random_moments(tmp_path: Path, ctx: Context, command: str, sig_name: str, point: int) -> None:
    _run_cell(tmp_path / str(point), ctx, command, sig_name, point, window_scale=3.0)
