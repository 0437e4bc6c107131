"""Batch file mode: several inputs (or glob patterns), outputs named by a folder or a pattern,
processed one after the other — or in ``jobs`` parallel processes — with one progress display.

Every output is planned, and every conflict reported, before the first frame is processed:
two inputs writing the same output, an output that is an input, an existing output without
``--overwrite``, a matte or PNG-sequence folder holding files vcam did not write. A file
that fails is reported and the others go on — also when its worker process dies (killed):
the parent then deletes that worker's temporary files, found by the tag in their names.
Ctrl-C, SIGTERM and SIGHUP stop them all and leave no partial file (each process aborts its
own; the workers stop on all three).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import multiprocessing as mp
import os
import queue
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error

from vcam.config import Config
from vcam.errors import InputError, OutputError, VcamError
from vcam.files.process import FileOptions, FrameProgress, hold_stop_signals, process_file
from vcam.matting.engine import available_cores
from vcam.matting.models import ProgressFactory
from vcam.media.formats import default_extension
from vcam.media.paths import MATTES, PNG_SEQUENCE, check_folder, remove_temp_files
from vcam.signals import blocked, worker_process_signals

__all__ = [
    "BatchDisplay",
    "Job",
    "JobResult",
    "estimate_frames",
    "expand_inputs",
    "plan_jobs",
    "run_batch",
]

log = logging.getLogger(__name__)
_GLOB = ("*", "?", "[")
_FIELDS = ("stem", "name", "ext", "parent", "folder", "index")
_EVENT_POLL_S = 0.2
_WORKER_STOP_S = 30.0


@dataclass(frozen=True, slots=True)
class Job:
    """One input and where its results go. ``index`` is 1-based (as in ``{index}``).
    ``temp_tag`` marks its temporary files' names (set for worker processes)."""

    index: int
    input: Path
    output: Path
    matte_out: Path | None = None
    temp_tag: str = ""


@dataclass(slots=True)
class JobResult:
    """How a job ended: ``status`` is ``written``, ``failed``, ``skipped`` or ``interrupted``."""

    job: Job
    status: str
    message: str = ""
    summary: dict[str, object] | None = None


def expand_inputs(items: Sequence[str]) -> list[Path]:
    """Input arguments as files, in order, each once. An argument with ``* ? [`` that is not
    itself a file is a glob pattern (``**`` recursive) — for shells that do not expand it or
    lists too long for the command line; a pattern matching nothing is an :class:`InputError`."""
    out: list[Path] = []
    seen: set[Path] = set()
    for text in items:
        p = Path(text).expanduser()
        if any(c in text for c in _GLOB) and not p.exists():
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True) if Path(m).is_file())
            if not matches:
                raise InputError(f"input {text}: no file matches this pattern")
        else:
            matches = [p]
        for m in matches:
            key = m.resolve()
            if key not in seen:
                seen.add(key)
                out.append(m)
    return out


def _fill(pattern: str, inp: Path, index: int) -> str:
    fields = {
        "stem": inp.stem, "name": inp.name, "ext": inp.suffix.lstrip("."), "parent": str(inp.parent),
        "folder": inp.resolve().parent.name, "index": index,
    }
    try:
        return pattern.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        known = ", ".join("{" + f + "}" for f in _FIELDS)
        raise OutputError(f"--out-pattern {pattern!r}: cannot fill it ({exc}); it may use {known}") from None


def _is_folder(output: str) -> bool:
    return output.endswith(("/", os.sep)) or Path(output).expanduser().is_dir()


def plan_jobs(
    inputs: Sequence[Path],
    output: str | None,
    pattern: str | None,
    options: FileOptions,
    *,
    matte_out: str | None = None,
    skip_existing: bool = False,
    created: list[Path] | None = None,
) -> tuple[list[Job], list[Job]]:
    """Where each input goes: (jobs to run, jobs skipped because their output exists).

    ``output`` is a file (one input) or a folder (ends with ``/`` or exists): ``FOLDER/<stem>``
    plus the codec's suffix (a PNG sequence is the folder ``FOLDER/<stem>``). ``pattern``
    (``--out-pattern``) names each output with ``{stem} {name} {ext} {parent} {folder} {index}``
    (``{parent}`` is the input's folder as given, ``{folder}`` only its name),
    inside ``output`` when that is a folder. With several inputs, ``matte_out`` is a folder
    holding one folder of mattes per input, named by its output's stem. Folders it creates
    are appended to ``created`` (the caller removes them again if they stay empty).
    """
    if not inputs:
        raise InputError("no input files given")
    if output is None and pattern is None:
        raise OutputError("no output given: pass -o OUTPUT (a file, or a folder ending with /) or --out-pattern PATTERN")
    folder = Path(output).expanduser() if output is not None and _is_folder(output) else None
    if output is not None and folder is None and (pattern is not None or len(inputs) > 1):
        what = "--out-pattern" if pattern is not None else f"{len(inputs)} inputs"
        raise OutputError(f"output {output}: with {what}, -o must be a folder; end it with / to create one")
    ext = default_extension(options.codec, options.transparent)
    jobs: list[Job] = []
    for i, inp in enumerate(inputs, start=1):
        if pattern is not None:
            name = Path(_fill(pattern, inp, i)).expanduser()
            out = folder / name if folder is not None and not name.is_absolute() else name
        elif folder is not None:
            out = folder / (inp.stem + ext)
        else:
            assert output is not None
            out = Path(output).expanduser()
        mattes = None
        if matte_out is not None:
            mattes = Path(matte_out).expanduser() if len(inputs) == 1 else Path(matte_out).expanduser() / out.stem
        jobs.append(Job(i, inp, out, mattes))
    _check_conflicts(jobs)
    skipped = [j for j in jobs if skip_existing and j.output.exists()]
    todo = [j for j in jobs if j not in skipped]
    for j in todo:  # a folder holding what vcam did not write is refused even with --overwrite
        if options.codec == "png" and j.output.is_dir():
            check_folder(j.output, PNG_SEQUENCE, True, [("input video", j.input)])
        if j.matte_out is not None and j.matte_out.is_dir():
            check_folder(j.matte_out, MATTES, options.overwrite, [("input video", j.input), ("output", j.output)])
    if not options.overwrite:
        existing = [j.output for j in todo if j.output.exists() and not _empty_dir(j.output)]
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise OutputError(
                f"output {existing[0]} already exists{more}; pass --overwrite to replace, or --skip-existing to keep it"
                if len(jobs) > 1 else f"output {existing[0]} already exists; pass --overwrite to replace it"
            )
    if folder is not None and not folder.exists():
        if not folder.parent.is_dir():
            raise OutputError(f"output folder {folder}: folder {folder.parent} does not exist")
        folder.mkdir()
        if created is not None:
            created.append(folder)
        log.info("created output folder %s", folder)
    if matte_out is not None and len(inputs) > 1:
        base = Path(matte_out).expanduser()
        if not base.is_dir():
            if not base.parent.is_dir():
                raise OutputError(f"matte folder {base}: folder {base.parent} does not exist")
            base.mkdir()
            if created is not None:
                created.append(base)
    return todo, skipped


def _empty_dir(p: Path) -> bool:
    return p.is_dir() and not any(p.iterdir())


def _check_conflicts(jobs: Sequence[Job]) -> None:
    inputs = {j.input.resolve(): j for j in jobs}
    outputs: dict[Path, Job] = {}
    for j in jobs:
        key = j.output.resolve()
        if key in inputs:
            raise OutputError(f"output {j.output} is the input file; choose another output name")
        if key in outputs:
            raise OutputError(
                f"inputs {outputs[key].input} and {j.input} would both be written to {j.output}; "
                "use --out-pattern with {parent} or {index} to tell them apart"
            )
        outputs[key] = j
    mattes: dict[Path, Job] = {}
    for j in jobs:
        if j.matte_out is None:
            continue
        key = j.matte_out.resolve()
        if key in mattes:
            raise OutputError(
                f"--matte-out: the mattes of {mattes[key].input} and {j.input} would both go to {j.matte_out}; "
                "give the outputs different names"
            )
        mattes[key] = j


def estimate_frames(path: Path) -> int | None:
    """Frames in a video from its header (or duration x rate); None when it cannot tell.
    Cheap: nothing is decoded. For progress display only."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return None
            s = c.streams.video[0]
            if s.frames:
                return int(s.frames)
            rate = s.average_rate or s.guessed_rate
            if s.duration and s.time_base and rate:
                return round(float(s.duration * s.time_base * rate))
            if c.duration and rate:
                return round(c.duration / 1_000_000 * float(rate))
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    return None


class BatchDisplay:
    """Progress on stderr (tqdm): one bar per file being processed (frames, frames/s, ETA)
    and, for several files, an overall bar over the frames of all of them. Shown only when
    ``enabled`` and stderr is a terminal."""

    def __init__(self, total_frames: int | None, files: int, overall: bool = True, enabled: bool = True) -> None:
        from functools import partial

        from tqdm import tqdm

        # disable=None: no bars when stderr is not a terminal (a log file gets no redraw spam)
        self._tqdm = partial(tqdm, disable=None if enabled else True, dynamic_ncols=True, file=sys.stderr)
        self._write = tqdm.write
        self._lock = threading.Lock()
        self._overall = (
            self._tqdm(total=total_frames, unit="frame", desc=f"all {files} files", position=0) if overall else None
        )
        self._bars: dict[int, Any] = {}
        self._expected: dict[int, int] = {}
        self._done: dict[int, int] = {}
        self._slots: dict[int, int] = {}

    def start(self, key: int, name: str, total: int | None) -> None:
        with self._lock:
            slot = min(set(range(1, len(self._slots) + 2)) - set(self._slots.values()))
            self._slots[key] = slot
            pos = slot if self._overall is not None else 0
            self._bars[key] = self._tqdm(total=total, unit="frame", desc=name, position=pos, leave=self._overall is None)
            self._expected[key] = total or 0
            self._done[key] = 0

    def tick(self, key: int, n: int) -> None:
        with self._lock:
            bar = self._bars.get(key)
            if bar is not None:
                bar.update(n)
                self._done[key] += n
            if self._overall is not None:
                self._overall.update(n)

    def finish(self, key: int) -> None:
        """The file is done (or failed): frames it did not process leave the overall total."""
        with self._lock:
            bar = self._bars.pop(key, None)
            self._slots.pop(key, None)
            expected, done = self._expected.pop(key, 0), self._done.pop(key, 0)
            if bar is None:
                return
            if self._overall is not None and self._overall.total is not None and done < expected:
                self._overall.total -= expected - done
                self._overall.refresh()
            bar.close()

    def write(self, line: str, err: bool = False) -> None:
        with self._lock:
            self._write(line, file=sys.stderr if err else sys.stdout)

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
            if self._overall is not None:
                self._overall.close()


def _frame_progress(display: BatchDisplay, key: int, name: str) -> FrameProgress:
    def factory(total: int | None) -> Callable[[int], None]:
        display.start(key, name, total)
        return lambda n: display.tick(key, n)

    return factory


def run_batch(
    cfg: Config,
    jobs: Sequence[Job],
    options: FileOptions,
    *,
    workers: int = 1,
    display: BatchDisplay | None = None,
    progress: ProgressFactory | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Process ``jobs`` one after the other (``workers`` = 1, one shared engine) or in
    ``workers`` processes; returns one result per job, in job order. Ctrl-C stops every
    file (none is left half-written) and is raised as KeyboardInterrupt."""
    if workers > 1 and len(jobs) > 1:
        return _run_parallel(cfg, jobs, options, min(workers, len(jobs)), display, progress, on_result)
    from vcam.build import build_engine

    results: list[JobResult] = []
    engine = build_engine(cfg, progress)  # one engine for all files: the model loads once
    for job in jobs:
        opts = dataclasses.replace(options, matte_out=str(job.matte_out) if job.matte_out else None)
        fp = _frame_progress(display, job.index, job.input.name) if display is not None else None
        try:
            summary = process_file(cfg, job.input, job.output, opts, frame_progress=fp, engine=engine)
            result = JobResult(job, "written", f"wrote {job.output} ({summary['frames_out']} frames)", summary)
        except VcamError as exc:
            result = JobResult(job, "failed", str(exc))
        finally:
            if display is not None:
                display.finish(job.index)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


# -- parallel: one process per worker, each with its own engine -------------------------------


def _worker_threads(cfg: Config, workers: int) -> Config:
    """Split the cores between the workers' ONNX Runtime sessions unless threads are set."""
    if cfg.model.threads:
        return cfg
    threads = max(1, available_cores() // workers)
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"threads": threads})})


class _WorkerStop:
    """A worker's stop signal: the parent's event, this process's SIGTERM, or the parent gone
    (killed without a chance to set the event: the worker must not go on alone)."""

    def __init__(self, shared: Any, parent: int) -> None:
        self._shared, self._parent, self._local = shared, parent, False

    def set(self) -> None:
        self._local = True

    def is_set(self) -> bool:
        return self._local or self._shared.is_set() or os.getppid() != self._parent


def _worker_main(wid: int, cfg: Config, options: FileOptions, tasks: Any, events: Any, stop: Any) -> None:
    """Body of one worker process: takes jobs until a None, reports through ``events``."""
    stop = _WorkerStop(stop, os.getppid())
    worker_process_signals(stop)
    logging.basicConfig(level=logging.WARNING, format="vcam: %(message)s", stream=sys.stderr)
    from vcam.build import build_engine

    engine = None
    while not stop.is_set():
        try:
            job: Job | None = tasks.get(timeout=_EVENT_POLL_S)
        except queue.Empty:
            continue
        if job is None:
            return
        events.put(("take", wid, job.index))

        def factory(total: int | None, job: Job = job) -> Callable[[int], None]:
            events.put(("start", wid, job.index, total))
            return lambda n: events.put(("tick", wid, job.index, n))

        opts = dataclasses.replace(options, matte_out=str(job.matte_out) if job.matte_out else None)
        try:
            if engine is None:
                engine = build_engine(cfg)
            summary = process_file(
                cfg, job.input, job.output, opts, frame_progress=factory, engine=engine, stop=stop, temp_tag=job.temp_tag
            )
            events.put(("written", wid, job.index, f"wrote {job.output} ({summary['frames_out']} frames)", summary))
        except VcamError as exc:
            events.put(("failed", wid, job.index, str(exc), None))
        except KeyboardInterrupt:
            events.put(("interrupted", wid, job.index, "interrupted", None))
            return
        except Exception as exc:  # noqa: BLE001 - a bug: report it as this file's failure
            events.put(("failed", wid, job.index, f"internal error: {type(exc).__name__}: {exc}", None))


@contextlib.contextmanager
def _workers(count: int, cfg: Config, options: FileOptions, jobs: Sequence[Job]) -> Iterator[tuple[list[Any], Any, Any]]:
    ctx = mp.get_context("spawn")  # no fork of a process that holds threads and ORT sessions
    _start_resource_tracker()
    tasks, events, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    for job in jobs:
        tasks.put(job)
    for _ in range(count):
        tasks.put(None)
    procs = [
        ctx.Process(target=_worker_main, args=(w, cfg, options, tasks, events, stop), name=f"vcam-worker-{w}", daemon=True)
        for w in range(count)
    ]
    for p in procs:
        p.start()
    try:
        yield procs, events, stop
    finally:
        with hold_stop_signals():  # a second Ctrl-C must not cut the clean-up short
            stop.set()
            for p in procs:
                p.join(_WORKER_STOP_S)
                if p.is_alive():
                    log.error("worker %s did not stop within %.0f s; killing it", p.name, _WORKER_STOP_S)
                    p.kill()
                    p.join()
            # whatever a worker that died (or was killed above) left behind; the others
            # removed their own, so this finds nothing of theirs
            for job in jobs:
                _remove_temp_files(job)
            tasks.cancel_join_thread()
            events.cancel_join_thread()


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with SIGHUP blocked. It ignores SIGINT and
    SIGTERM itself but not SIGHUP: a closed terminal (SIGHUP to the whole process group)
    killed it, and the one started again in its place printed a KeyError traceback for every
    semaphore it had not seen. A blocked signal stays blocked across exec."""
    from multiprocessing import resource_tracker

    with blocked({signal.SIGHUP}):
        resource_tracker.ensure_running()


def _remove_temp_files(job: Job) -> list[Path]:
    if not job.temp_tag:
        return []
    folders = {job.output.parent} | ({job.matte_out.parent} if job.matte_out is not None else set())
    return [p for folder in folders for p in remove_temp_files(folder, job.temp_tag)]


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def _run_parallel(
    cfg: Config,
    jobs: Sequence[Job],
    options: FileOptions,
    count: int,
    display: BatchDisplay | None,
    progress: ProgressFactory | None,
    on_result: Callable[[JobResult], None] | None,
) -> list[JobResult]:
    from vcam.build import model_dir
    from vcam.matting.models import ensure_model

    # fetch and verify the model once, here, not in every worker at the same time
    if progress is None:
        ensure_model(cfg.model.name, cfg.model.path, model_dir(cfg))
    else:
        ensure_model(cfg.model.name, cfg.model.path, model_dir(cfg), progress=progress)
    wcfg = _worker_threads(cfg, count)
    log.info("%d worker processes, %d ONNX Runtime threads each", count, wcfg.model.threads)
    run_tag = secrets.token_hex(3)
    jobs = [dataclasses.replace(j, temp_tag=f"{run_tag}-{j.index}-") for j in jobs]
    by_index = {j.index: j for j in jobs}
    results: dict[int, JobResult] = {}
    current: dict[int, int] = {}  # worker → job index in progress
    gone: set[int] = set()  # workers whose end was dealt with
    with _workers(count, wcfg, options, jobs) as (procs, events, _stop):
        while len(results) < len(jobs):
            # which workers have ended, before reading: everything they sent is then queued
            ended = [wid for wid, p in enumerate(procs) if wid not in gone and not p.is_alive()]
            for ev in _drain(events):
                kind, wid, idx = ev[0], ev[1], ev[2]
                if kind == "take":
                    current[wid] = idx
                elif kind == "start":
                    if display is not None:
                        display.start(idx, by_index[idx].input.name, ev[3])
                elif kind == "tick":
                    if display is not None:
                        display.tick(idx, ev[3])
                elif idx not in results:
                    current.pop(wid, None)
                    _record(results, JobResult(by_index[idx], kind, ev[3], ev[4]), display, on_result)
            for wid in ended:
                gone.add(wid)
                if wid in current:  # died without a word (killed, crashed): its file failed
                    job = by_index[current.pop(wid)]
                    _remove_temp_files(job)
                    how = _how_it_ended(procs[wid].exitcode)
                    message = f"{job.input}: worker process exited unexpectedly ({how}); its temporary files were removed"
                    _record(results, JobResult(job, "failed", message), display, on_result)
            if len(gone) == len(procs):
                for j in jobs:
                    if j.index not in results:
                        _record(results, JobResult(j, "failed", "not processed: every worker process has exited"), display, on_result)
    return [results[j.index] for j in jobs]


def _drain(events: Any) -> list[Any]:
    """The events queued now: waits up to _EVENT_POLL_S for the first, then takes the rest."""
    try:
        out = [events.get(timeout=_EVENT_POLL_S)]
    except queue.Empty:
        return []
    while True:
        try:
            out.append(events.get_nowait())
        except queue.Empty:
            return out


def _record(
    results: dict[int, JobResult], result: JobResult, display: BatchDisplay | None, on_result: Callable[[JobResult], None] | None
) -> None:
    results[result.job.index] = result
    if display is not None:
        display.finish(result.job.index)
    if on_result is not None:
        on_result(result)
