"""Running file-mode jobs: one after the other, or in ``jobs`` parallel worker processes,
with one progress display (:mod:`vcam.files.progress`) over jobs planned by
:mod:`vcam.files.plan`.

A file that fails is reported and the others go on — also when its worker process dies
(killed): the parent then deletes that worker's temporary files, found by the tag in their
names. Ctrl-C, SIGTERM and SIGHUP stop them all and leave no partial file (each process
aborts its own; the workers stop on all three).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import secrets
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcam.build import write_stats
from vcam.config import Config
from vcam.errors import VcamError
from vcam.files.chunks import ChunkSpec, process_chunked
from vcam.files.plan import Job, JobResult, estimate_frames, expand_inputs, plan_jobs
from vcam.files.process import FileOptions, FrameProgress, hold_stop_signals, process_file
from vcam.files.progress import BatchDisplay, frame_progress, one_bar
from vcam.matting.engine import available_cores
from vcam.matting.models import ProgressFactory
from vcam.media.paths import remove_temp_files
from vcam.signals import blocked, raise_if_stopped, worker_process_signals

if TYPE_CHECKING:
    from vcam.files.ray_executor import RaySettings

# Job, JobResult, estimate_frames, expand_inputs, plan_jobs (vcam.files.plan) and BatchDisplay
# (vcam.files.progress) are re-exported for the callers of the former batch module.
__all__ = [
    "BatchDisplay",
    "Job",
    "JobResult",
    "estimate_frames",
    "expand_inputs",
    "plan_jobs",
    "run_batch",
    "run_jobs",
]

log = logging.getLogger(__name__)
_EVENT_POLL_S = 0.2
_WORKER_STOP_S = 30.0


def run_batch(
    cfg: Config,
    jobs: Sequence[Job],
    options: FileOptions,
    *,
    workers: int = 1,
    display: BatchDisplay | None = None,
    progress: ProgressFactory | None = None,
    on_result: Callable[[JobResult], None] | None = None,
    chunks: ChunkSpec | None = None,
    ray: RaySettings | None = None,
) -> list[JobResult]:
    """Process ``jobs`` one after the other (``workers`` = 1, one shared engine), in
    ``workers`` processes, or as Ray tasks (``ray``, :mod:`vcam.files.ray_executor`); with
    ``chunks`` each file in chunks (:mod:`vcam.files.chunks`; locally one after the other).
    Returns one result per job, in job order. Ctrl-C stops every file (none is left
    half-written) and is raised as KeyboardInterrupt."""
    if ray is not None:
        from vcam.files.ray_executor import run_ray_batch

        return run_ray_batch(cfg, jobs, options, ray, chunks=chunks, display=display, progress=progress, on_result=on_result)
    if workers > 1 and chunks is not None:
        log.warning("--jobs with --chunks: here the chunks run one after another; --executor ray runs them side by side")
    if workers > 1 and len(jobs) > 1 and chunks is None:
        return _run_parallel(cfg, jobs, options, min(workers, len(jobs)), display, progress, on_result)
    from vcam.build import build_engine
    from vcam.matting.lazy import lazy_if_off

    results: list[JobResult] = []
    # one engine for all files: the model loads once (with mode off only if a file needs it)
    engine = lazy_if_off(cfg, lambda: build_engine(cfg, progress))
    for job in jobs:
        raise_if_stopped()
        opts = dataclasses.replace(options, matte_out=str(job.matte_out) if job.matte_out else None)
        fp = frame_progress(display, job.index, job.input.name) if display is not None else None
        try:
            if chunks is not None:
                summary = process_chunked(cfg, job.input, job.output, chunks, opts, frame_progress=fp, engine=engine)
            else:
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
    from vcam.matting.lazy import lazy_if_off

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
                engine = lazy_if_off(cfg, lambda: build_engine(cfg))
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
    semaphore it had not seen. A blocked signal stays blocked across exec.

    Its warnings are turned off (a ``-W`` option it is started with): a worker killed with
    ``kill -9`` leaves a semaphore that the tracker removes when vcam ends, and its two
    warnings about it ("There appear to be 1 leaked semaphore objects", then "No such file or
    directory") came after vcam's own last line, which already said the worker was killed and
    its files removed (seen in a test run on the loaded 2-core machine, 2026-12-02)."""
    from multiprocessing import resource_tracker

    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    added = quiet not in sys.warnoptions
    if added:
        sys.warnoptions.append(quiet)  # passed on to the tracker's command line
    try:
        with blocked({signal.SIGHUP}):
            resource_tracker.ensure_running()
    finally:
        if added:
            sys.warnoptions.remove(quiet)  # not to the workers


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
            raise_if_stopped()
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


def run_jobs(
    cfg: Config,
    options: FileOptions,
    inputs: Sequence[Path],
    jobs: Sequence[Job],
    skipped: Sequence[Job],
    *,
    workers: int = 1,
    quiet: bool = False,
    stats_json: str | None = None,
    progress: ProgressFactory | None = None,
    chunks: ChunkSpec | None = None,
    ray: RaySettings | None = None,
) -> int:
    """``vcam process`` after planning: one file (its errors are the command's errors) or a
    batch (each failure reported, the others go on); prints what was written and returns the
    exit status (1 when a file of a batch failed)."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    if len(inputs) == 1 and jobs and ray is None:  # one file: errors are the command's errors
        job = jobs[0]
        display = BatchDisplay(None, 1, overall=False, enabled=not quiet)
        try:
            with logging_redirect_tqdm():
                opts = dataclasses.replace(options, matte_out=str(job.matte_out) if job.matte_out else None)
                bar: FrameProgress = lambda total: one_bar(display, job.input.name, total)  # noqa: E731
                if chunks is not None:
                    summary = process_chunked(cfg, job.input, job.output, chunks, opts, progress=progress, frame_progress=bar)
                    write_stats(stats_json, summary)
                else:
                    summary = process_file(
                        cfg, job.input, job.output, opts, stats_json=stats_json, progress=progress, frame_progress=bar
                    )
        finally:
            display.close()
        print(f"wrote {summary['output']} ({summary['frames_out']} frames)")
        return 0
    if not jobs:
        return 0
    cores = available_cores()
    if workers > cores and ray is None:
        log.warning("--jobs %d: only %d CPU cores available; running %d at a time", workers, cores, cores)
        workers = cores
    total = [estimate_frames(j.input) for j in jobs]
    display = BatchDisplay(None if None in total else sum(t or 0 for t in total), len(jobs), enabled=not quiet)

    def report(result: JobResult) -> None:
        if result.status == "written":
            display.write(result.message)
        elif result.status == "failed":
            display.write(f"vcam: error: {result.message}", err=True)

    try:
        with logging_redirect_tqdm():
            results = run_batch(
                cfg, jobs, options, workers=workers, display=display, progress=progress, on_result=report, chunks=chunks, ray=ray
            )
    finally:
        display.close()
    failed = [r for r in results if r.status != "written"]
    if stats_json:
        write_stats(stats_json, {"files": [
            {"input": str(r.job.input), "output": str(r.job.output), "status": r.status, "message": r.message, **(r.summary or {})}
            for r in results
        ]})
    print(f"{len(results) - len(failed)} of {len(results)} files written" + (f", {len(skipped)} skipped" if skipped else ""))
    if failed:
        print(f"vcam: error: {len(failed)} of {len(results)} files failed: " + ", ".join(str(r.job.input) for r in failed), file=sys.stderr)
        return 1
    return 0
