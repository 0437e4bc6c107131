"""Planning a batch: the inputs (files or glob patterns) and where each one's outputs go (a
folder or a pattern).

Every output is planned, and every conflict reported, before the first frame is processed:
two inputs writing the same output, an output that is an input, an existing output without
``--overwrite``, a matte or PNG-sequence folder holding files vcam did not write.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import av.error

from vcam.errors import InputError, OutputError
from vcam.files.process import FileOptions
from vcam.media.formats import default_extension
from vcam.media.paths import MATTES, PNG_SEQUENCE, check_folder

__all__ = ["Job", "JobResult", "estimate_frames", "expand_inputs", "plan_jobs"]

log = logging.getLogger(__name__)
_GLOB = ("*", "?", "[")
_FIELDS = ("stem", "name", "ext", "parent", "folder", "index")


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
    holding one folder of mattes per input, named by its output's stem.
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
