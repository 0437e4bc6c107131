"""``vcam process --executor ray``: the batch's files (or chunks of files) as Ray tasks, on
this machine or on a Ray cluster (``--ray-address``).

- One task per file, or per chunk (:mod:`vcam.files.chunks`), each declaring what it needs
  (``num_cpus``, ``num_gpus``). A task sets ONNX Runtime's intra-op threads and OpenCV's
  threads to the CPUs it was given: Ray does not cap a worker's threads, and more threads
  than cores doubled every figure here (docs/performance.md).
- The model is fetched and verified by vcam's own cache (:mod:`vcam.matting.models`) on each
  node the first time a task runs there, under a node-wide lock, so a node downloads it
  once; a worker process keeps its engine for the tasks that follow.
- Outputs are written where the workers see them (the paths as given: local paths on one
  machine, a shared file system such as NFS on a cluster) under the hidden temporary names
  of :mod:`vcam.media.paths`, tagged per job, and renamed into place only when complete.
  Chunks are joined (remuxed) by this process, which must see the same files.
- A file that fails (a :class:`~vcam.errors.VcamError` in its task) is reported and the
  others go on. A worker that dies (killed, out of memory, its node lost) makes Ray run the
  task again (``max_retries``); a retry first deletes what the dead attempt left. When the
  retries are used up the file is reported failed and its temporary files are deleted.
- A cluster's address is checked before ``ray.init`` (:func:`check_ray_address`): the head
  must accept a connection and answer as a gRPC server (Ray's GCS, or its client server for
  ``ray://``) within ``_REACH_S``, else one clear error. ``ray.init`` itself retries an
  absent head for over a minute, deaf to Ctrl-C.
- Ctrl-C, SIGTERM, SIGHUP: every task is cancelled (it aborts its output like a local run),
  waited for, and whatever is left under this run's tag deleted; a Ray instance this command
  started is shut down.

Ray is the optional extra ``[cluster]``, imported only here and only when asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcam.config import Config
from vcam.errors import VcamError
from vcam.files.chunks import (
    Chunk,
    ChunkSpec,
    MatteFolder,
    check_chunkable,
    join_chunks,
    plan_chunks,
    remove_chunk_files,
)
from vcam.files.plan import Job, JobResult
from vcam.files.process import FileOptions, hold_stop_signals
from vcam.files.progress import BatchDisplay
from vcam.matting.models import ProgressFactory
from vcam.media.paths import remove_temp_files
from vcam.signals import STOP_SIGNALS, blocked, keep_stop_handlers, raise_if_stopped

__all__ = ["RaySettings", "check_ray_address", "import_ray", "run_ray_batch"]

log = logging.getLogger(__name__)
_POLL_S = 0.2
_FLUSH_S = 0.5  # how often a task sends its frame counts
_STOP_S = 30.0  # how long cancelled tasks get to clean up before they are killed
_REACH_S = 10.0  # how long a cluster's head gets to accept a connection and answer
_CLIENT_PORT = 10001  # Ray Client's port (ray://HOST without a port), Ray's default
# HTTP/2's client connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5): a
# gRPC server (Ray's GCS and its client server are) answers with its own SETTINGS frame
_H2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_H2_SETTINGS = 4
MISSING = "--executor ray needs Ray, which is not installed; in the vcam folder: pip install '.[cpu,cluster]'"


@dataclass(frozen=True, slots=True)
class RaySettings:
    """Where and how the tasks run: ``address`` of a running cluster (None: the
    ``RAY_ADDRESS`` environment variable, else a Ray started for this command on this
    machine), each task's ``cpus`` (its ONNX Runtime threads) and ``gpus``, and how many
    times a task whose worker died is run again."""

    address: str | None = None
    cpus: int = 1
    gpus: float = 0.0
    max_retries: int = 2
    local_cpus: int | None = None  # a Ray started here gets this many CPUs (None: all)


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`VcamError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise VcamError(MISSING) from None
    return ray


# -- in the worker ------------------------------------------------------------------------------

_ENGINES: dict[str, Any] = {}  # per worker process: the engine of each model setting


@contextlib.contextmanager
def _node_lock(folder: Path) -> Iterator[None]:
    """One task per node at a time checks (and fetches) the model into ``folder``."""
    import fcntl  # POSIX only; Ray's workers run on Linux and macOS

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".vcam-fetch.lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _engine_for(cfg: Config) -> Any:
    from vcam.build import build_engine, model_dir
    from vcam.matting.models import ensure_model

    key = cfg.model.model_dump_json()
    engine = _ENGINES.get(key)
    if engine is None:
        folder = model_dir(cfg)
        with _node_lock(folder):
            ensure_model(cfg.model.name, cfg.model.path, folder)
        engine = _ENGINES[key] = build_engine(cfg)
    return engine


def _task_config(cfg: Config, cpus: int) -> Config:
    import cv2

    cv2.setNumThreads(cpus)
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"threads": cpus})})


class _Reporter:
    """A task's frame counts, sent to the driver's event actor at most every _FLUSH_S."""

    def __init__(self, events: Any, key: tuple[int, int]) -> None:
        self._events, self._key = events, key
        self._pending, self._last = 0, time.monotonic()

    def start(self, total: int | None) -> Callable[[int], None]:
        self._events.put.remote(("start", *self._key, total))
        return self.tick

    def tick(self, n: int) -> None:
        self._pending += n
        if time.monotonic() - self._last >= _FLUSH_S:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._events.put.remote(("tick", *self._key, self._pending))
        self._pending, self._last = 0, time.monotonic()


def _run_task(
    cfg: Config,
    job: Job,
    options: FileOptions,
    chunk: Chunk | None,
    tag: str,
    mattes: str | None,
    cpus: int,
    events: Any,
) -> tuple[str, str, dict[str, object] | None]:
    """Body of one Ray task: one file, or one chunk of one. Returns (status, message, summary);
    a :class:`VcamError` is a result (not retried), a dead worker is Ray's to retry."""
    logging.basicConfig(level=logging.WARNING, format="vcam: %(message)s")
    from vcam.files.chunks import chunk_file, process_chunk
    from vcam.files.process import process_file

    # an earlier attempt of this task whose worker died left these behind
    folders = {job.output.parent} | ({Path(mattes).parent} if mattes else set())
    folders |= {job.matte_out.parent} if job.matte_out is not None and chunk is None else set()
    for folder in folders:
        remove_temp_files(folder, tag)
    reporter = _Reporter(events, (job.index, chunk.number if chunk else 0))
    try:
        tcfg = _task_config(cfg, cpus)
        engine = _engine_for(tcfg)
        if chunk is None:
            opts = dataclasses.replace(options, matte_out=str(job.matte_out) if job.matte_out else None)
            summary = process_file(
                tcfg, job.input, job.output, opts, frame_progress=reporter.start, engine=engine, temp_tag=tag
            )
            return "written", f"wrote {job.output} ({summary['frames_out']} frames)", summary
        with contextlib.suppress(OSError):
            chunk_file(job.output, job.temp_tag, chunk).unlink(missing_ok=True)
        summary = process_chunk(
            tcfg,
            job.input,
            job.output,
            chunk,
            options,
            tag=job.temp_tag,
            engine=engine,
            mattes=Path(mattes) if mattes else None,
            frame_progress=reporter.start,
            temp_tag=tag,
        )
        return "written", f"chunk {chunk.number}", summary
    except VcamError as exc:
        return "failed", str(exc), None
    except KeyboardInterrupt:  # ray.cancel: the output was aborted on the way out
        return "interrupted", "interrupted", None
    except Exception as exc:  # noqa: BLE001 - a bug: report it as this file's failure
        return "failed", f"internal error: {type(exc).__name__}: {exc}", None
    finally:
        reporter.flush()


class _Events:
    """The driver's mailbox for the tasks' progress (a Ray actor)."""

    def __init__(self) -> None:
        self._items: list[tuple[Any, ...]] = []

    def put(self, item: tuple[Any, ...]) -> None:
        self._items.append(item)

    def take(self) -> list[tuple[Any, ...]]:
        items, self._items = self._items, []
        return items


# -- in the driver -------------------------------------------------------------------------------


@dataclass(slots=True)
class _JobState:
    job: Job
    chunks: list[Chunk] = field(default_factory=list)  # empty: the whole file in one task
    mattes: MatteFolder | None = None
    pending: set[int] = field(default_factory=set)  # chunk numbers (or 0) still running
    summaries: list[dict[str, object]] = field(default_factory=list)
    failure: str | None = None
    started: bool = False
    total: int | None = None


def _endpoint(address: str, where: str) -> tuple[str, int] | None:
    """(host, port) of the head named by ``address``; None for those Ray resolves itself
    (``auto``: the cluster started on this machine, ``local``: a new one here)."""
    text = address.strip()
    if text.lower() in ("auto", "local"):
        return None
    default: int | None = None
    if text.lower().startswith("ray://"):
        text, default = text[len("ray://") :], _CLIENT_PORT
    elif "://" in text:
        raise VcamError(f"{where}: expected HOST:PORT, ray://HOST[:PORT] or auto")
    try:
        parts = urllib.parse.urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port or default
    except ValueError:
        host = port = None
    if not host or port is None or parts.path:
        raise VcamError(
            f"{where}: expected HOST:PORT (the head's GCS port, 6379 unless 'ray start --head"
            " --port' said otherwise), ray://HOST[:PORT] or auto"
        )
    return host, port


def check_ray_address(address: str, name: str = "--ray-address", timeout: float = _REACH_S) -> None:
    """Raise a :class:`VcamError` unless the head at ``address`` accepts a TCP connection and
    answers as a gRPC server within ``timeout`` seconds; ``name`` is where the address came
    from (the flag or ``RAY_ADDRESS``), for the message. Interruptible by Ctrl-C throughout."""
    where = f"{name}={address}" if name == "RAY_ADDRESS" else f"{name} {address}"
    endpoint = _endpoint(address, where)
    if endpoint is None:
        return
    host, port = endpoint
    check = (
        f"check that 'ray status' on the head shows it running and that port {port} is open"
        " between this machine and the head (firewall)"
    )
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        raise VcamError(
            f"{where}: cannot resolve the host {host} ({exc.strerror}); check the address"
        ) from None
    except TimeoutError:
        raise VcamError(
            f"{where}: no Ray head answers there (no connection within {timeout:g} s); {check}"
        ) from None
    except OSError as exc:
        raise VcamError(f"{where}: no Ray head answers there ({exc.strerror or exc}); {check}") from None
    reply, why = b"", f"no reply within {timeout:g} s"
    with sock:
        try:
            sock.sendall(_H2_HELLO)
            while len(reply) < 9:
                sock.settimeout(max(deadline - time.monotonic(), 0.01))
                data = sock.recv(9 - len(reply))
                if not data:
                    why = "it closed the connection"
                    break
                reply += data
        except TimeoutError:
            pass
        except OSError as exc:
            why = f"{exc.strerror or exc}"
    if reply and (len(reply) < 9 or reply[3] != _H2_SETTINGS):
        why = "its reply is not gRPC"
    if len(reply) < 9 or reply[3] != _H2_SETTINGS:
        raise VcamError(
            f"{where}: something accepts connections there but does not answer as a Ray head ({why});"
            " check the address and port: 'ray status' on the head prints the address to use"
        )


def _start_ray(ray: Any, settings: RaySettings) -> bool:
    """Connect to (or start) Ray; True when this command started it (and must stop it)."""
    if ray.is_initialized():
        return False
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        check_ray_address(address, "--ray-address" if settings.address else "RAY_ADDRESS")
    kwargs: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "configure_logging": True,
    }
    if address is None:
        kwargs.update(include_dashboard=False, num_cpus=settings.local_cpus)
    try:
        # Ray's own processes (started here for a local run) must not die of the Ctrl-C that
        # reaches the whole process group: this command cancels its tasks and then stops
        # them; and ray.init's SIGTERM handler (sys.exit) must not replace vcam's
        with keep_stop_handlers(), blocked(STOP_SIGNALS):
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        todo = (
            "check the address ('ray status' on the head prints it) and, if the cluster uses token"
            " authentication, set RAY_AUTH_MODE=token here (docs/files.md)"
            if address
            else "start one with 'ray start --head'"
        )
        raise VcamError(f"--executor ray: cannot connect to {where} ({exc}); {todo}") from None
    return True


def _plan(jobs: Sequence[Job], options: FileOptions, spec: ChunkSpec | None, run: str) -> list[_JobState]:
    states = []
    for j in jobs:
        job = dataclasses.replace(j, temp_tag=f"{run}-{j.index}-")
        state = _JobState(job)
        if spec is not None:
            check_chunkable(job.output, options)
            state.chunks = plan_chunks(job.input, spec)
            state.total = sum(c.frames for c in state.chunks)
        states.append(state)
    return states


def _cleanup(state: _JobState) -> None:
    job = state.job
    with hold_stop_signals():
        if state.chunks:
            remove_chunk_files(job.output, job.temp_tag, state.chunks)
        if state.mattes is not None:
            state.mattes.discard()
            state.mattes = None
        folders = {job.output.parent} | ({job.matte_out.parent} if job.matte_out is not None else set())
        for folder in folders:
            remove_temp_files(folder, job.temp_tag)


def _absolute_job(job: Job) -> Job:
    return dataclasses.replace(
        job, input=job.input.absolute(), output=job.output.absolute(),
        matte_out=job.matte_out.absolute() if job.matte_out is not None else None,
    )


def _absolute_paths(cfg: Config) -> Config:
    """``cfg`` with its file paths (background, model file, model folder) made absolute."""
    def absolute(value: str | None) -> str | None:
        return os.path.abspath(os.path.expanduser(value)) if value else value

    effect = cfg.effect.model_copy(update={"background": absolute(cfg.effect.background)})
    model = cfg.model.model_copy(update={"path": absolute(cfg.model.path), "dir": absolute(cfg.model.dir)})
    return cfg.model_copy(update={"effect": effect, "model": model})


def run_ray_batch(
    cfg: Config,
    jobs: Sequence[Job],
    options: FileOptions,
    settings: RaySettings,
    *,
    chunks: ChunkSpec | None = None,
    display: BatchDisplay | None = None,
    progress: ProgressFactory | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Run ``jobs`` as Ray tasks (see the module notes); one result per job, in job order.
    Ctrl-C cancels every task, deletes every temporary file and is raised as KeyboardInterrupt."""
    ray = import_ray()
    run = secrets.token_hex(3)
    # Ray's workers do not run in this folder (a cluster's not even on this machine): every
    # path they are given is absolute, as the driver sees it (shared storage: the same path)
    jobs, cfg = [_absolute_job(j) for j in jobs], _absolute_paths(cfg)
    states = _plan(jobs, options, chunks, run)
    started = _start_ray(ray, settings)
    results: dict[int, JobResult] = {}
    refs: dict[Any, tuple[int, int]] = {}
    try:
        if started and settings.address is None:
            # one machine: fetch and verify the model here, once, with its progress bar
            from vcam.build import model_dir
            from vcam.matting.models import ensure_model

            if progress is None:
                ensure_model(cfg.model.name, cfg.model.path, model_dir(cfg))
            else:
                ensure_model(cfg.model.name, cfg.model.path, model_dir(cfg), progress=progress)
        events = ray.remote(num_cpus=0)(_Events).remote()
        task = ray.remote(_run_task).options(
            num_cpus=settings.cpus,
            num_gpus=settings.gpus,
            max_retries=settings.max_retries,
            retry_exceptions=False,
        )
        for st in states:
            job = st.job
            if st.chunks:
                if job.matte_out is not None:
                    st.mattes = MatteFolder(job.matte_out, options.overwrite, job.temp_tag)
                mattes = str(st.mattes.tmp) if st.mattes else None
                for c in st.chunks:
                    tag = f"{job.temp_tag}c{c.number:04d}-"
                    refs[task.remote(cfg, job, options, c, tag, mattes, settings.cpus, events)] = (
                        job.index,
                        c.number,
                    )
                    st.pending.add(c.number)
            else:
                refs[task.remote(cfg, job, options, None, job.temp_tag, None, settings.cpus, events)] = (
                    job.index,
                    0,
                )
                st.pending.add(0)
        by_index = {st.job.index: st for st in states}
        _collect(ray, refs, by_index, events, results, display, on_result, options)
    except BaseException:
        with hold_stop_signals():
            _stop_all(ray, list(refs))
            for st in states:
                _cleanup(st)
        raise
    finally:
        if started:
            with hold_stop_signals():
                ray.shutdown()
    return [results[st.job.index] for st in states]


def _collect(
    ray: Any,
    refs: dict[Any, tuple[int, int]],
    states: dict[int, _JobState],
    events: Any,
    results: dict[int, JobResult],
    display: BatchDisplay | None,
    on_result: Callable[[JobResult], None] | None,
    options: FileOptions,
) -> None:
    waiting = list(refs)
    while waiting:
        raise_if_stopped()
        done, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=_POLL_S)
        _show(ray.get(events.take.remote()), states, display)
        for ref in done:
            index, number = refs[ref]
            st = states[index]
            st.pending.discard(number)
            try:
                status, message, summary = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                status, message, summary = "interrupted", "interrupted", None
            except ray.exceptions.RayError as exc:  # the worker died, retries used up
                status, summary = "failed", None
                message = f"{st.job.input}: its Ray task failed ({type(exc).__name__}: {_first_line(exc)})"
            if status != "written":
                if st.failure is None:
                    st.failure = message
                    # the file has failed: its other chunks need not finish
                    for other, (i, _n) in refs.items():
                        if i == index and other in waiting:
                            ray.cancel(other)
            elif summary is not None:
                st.summaries.append(summary)
            if not st.pending:
                _finish(st, results, display, on_result, options)
        # a frame count sent just before the end of a task
        if not waiting:
            _show(ray.get(events.take.remote()), states, display)


def _finish(
    st: _JobState,
    results: dict[int, JobResult],
    display: BatchDisplay | None,
    on_result: Callable[[JobResult], None] | None,
    options: FileOptions,
) -> None:
    job = st.job
    result: JobResult
    if st.failure is not None:
        _cleanup(st)
        status = "interrupted" if st.failure == "interrupted" else "failed"
        result = JobResult(job, status, st.failure)
    elif st.chunks:
        try:
            summary = join_chunks(job.input, job.output, st.chunks, options, tag=job.temp_tag)
            if st.mattes is not None:
                st.mattes.place()
                st.mattes = None
        except VcamError as exc:
            _cleanup(st)
            result = JobResult(job, "failed", str(exc))
        else:
            summary.update(
                {
                    "input": str(job.input),
                    "output": str(job.output),
                    "frames_out": summary["frames_written"],
                    "chunks": [{"start": c.start, "end": c.end, "lead_in": c.lead_in} for c in st.chunks],
                }
            )
            result = JobResult(
                job,
                "written",
                f"wrote {job.output} ({summary['frames_written']} frames, {len(st.chunks)} chunks)",
                summary,
            )
    else:
        summary = st.summaries[0]
        result = JobResult(job, "written", f"wrote {job.output} ({summary['frames_out']} frames)", summary)
    results[job.index] = result
    if display is not None:
        display.finish(job.index)
    if on_result is not None:
        on_result(result)


def _show(items: list[tuple[Any, ...]], states: dict[int, _JobState], display: BatchDisplay | None) -> None:
    if display is None:
        return
    for kind, index, _number, value in items:
        st = states.get(index)
        if st is None:
            continue
        if kind == "start" and not st.started:
            st.started = True
            display.start(index, st.job.input.name, st.total if st.chunks else value)
        elif kind == "tick":
            display.tick(index, value)


def _stop_all(ray: Any, refs: list[Any]) -> None:
    """Cancel every task (each aborts its output), wait for them, kill what did not stop."""
    if not ray.is_initialized():
        return
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    _done, left = ray.wait(refs, num_returns=len(refs), timeout=_STOP_S) if refs else ([], [])
    for ref in left:
        log.error("a Ray task did not stop within %.0f s; killing it", _STOP_S)
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
