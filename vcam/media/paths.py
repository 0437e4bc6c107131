"""Hidden temporary outputs beside the final name, moved onto it only when complete — and
never over anything vcam did not write.

Unlike :mod:`tempfile` (which creates them private, 0600/0700), these get the permissions
an ordinary new file or folder gets (the process umask applies), so the output is not
unexpectedly private.

The rules (docs/reliability.md, "Data loss in file mode"):

- a file output replaces an existing file only with ``overwrite``; one that appeared while
  processing is kept (a no-replace hard link puts the result in place) and the result goes
  to ``NAME-1.EXT`` (the next free number) with an :class:`OutputError` saying so;
- a folder output (mattes, PNG sequence) that exists is kept, never deleted: with
  ``overwrite`` only vcam's own files in it (``000000.png`` ...) are replaced; a folder
  holding anything else, or the input, is refused before any work; files that appear in it
  while processing are kept, and own-named ones that appeared send the result to
  ``NAME-1/``;
- when the result cannot be put in place at all, its temporary file is removed and the
  error says why.

A ``tag`` in the temporary names lets a parent process find and remove the temporary files
of a worker that died (:func:`remove_temp_files`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vcam.errors import OutputError

__all__ = [
    "MATTES",
    "PNG_SEQUENCE",
    "FolderKind",
    "check_folder",
    "link_no_replace",
    "place_file",
    "place_folder",
    "remove_temp_files",
    "temp_dir_beside",
    "temp_file_beside",
    "write_new_file",
]

_TRIES = 100
_ALT_TRIES = 1000
_LISTED = 3  # names shown in a message before "and N more"
# os.link not possible on this file system: fall back to an exclusive create + rename
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS})
_TAKEN = frozenset({errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR})


@dataclass(frozen=True, slots=True)
class FolderKind:
    """A folder output: ``what`` names it in messages, ``own`` matches the names vcam writes
    into it (only those are ever replaced), ``shown`` describes them."""

    what: str
    own: re.Pattern[str]
    shown: str
    exists: str  # the refusal without overwrite; {final} and {n} are filled in
    is_file: str  # the refusal when a file has the name; {final} is filled in

    def owns(self, name: str) -> bool:
        return self.own.fullmatch(name) is not None


MATTES = FolderKind(
    "matte folder", re.compile(r"\d{6,}\.png"), "its own mattes (000000.png, ...)",
    "matte folder {final} already holds {n} matte files; pass --overwrite to replace them",
    "matte folder {final} is a file; give a folder path",
)
PNG_SEQUENCE = FolderKind(
    "output", re.compile(r"\d{6,}\.png|audio\.mka"), "its own PNG sequence (000000.png, ..., audio.mka)",
    "output {final} already exists; pass --overwrite to replace it",
    "output {final} is a file; a PNG sequence is written into a folder",
)


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))  # "." and ".." get their real names


def _name(final: Path, parent: Path, suffix: str, tag: str) -> Path:
    name = _absolute(final).name
    stem = Path(name).stem if suffix else name
    return parent / f".{stem}.{tag}{secrets.token_hex(4)}.part{suffix}"


def temp_file_beside(final: Path, parent: Path, tag: str = "") -> Path:
    """Create an empty ``.<stem>.<tag><random>.part<suffix>`` in ``parent`` (raises OSError)."""
    for _ in range(_TRIES):
        path = _name(final, parent, final.suffix or ".tmp", tag)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"no free temporary name beside {final}")


def temp_dir_beside(final: Path, parent: Path, tag: str = "") -> Path:
    """Create an empty folder ``.<name>.<tag><random>.part`` in ``parent`` (raises OSError)."""
    for _ in range(_TRIES):
        path = _name(final, parent, "", tag)
        try:
            path.mkdir(0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free temporary name beside {final}")


def remove_temp_files(folder: Path, tag: str) -> list[Path]:
    """Delete the temporary files and folders named with ``tag`` in ``folder`` (those of a
    process that died); returns what was deleted."""
    if not tag:
        raise ValueError("remove_temp_files needs a tag")
    removed = []
    with contextlib.suppress(OSError):
        for p in folder.glob(f".*.{tag}*.part*"):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _inside(path: Path, folder: Path) -> bool:
    p, f = path.resolve(), folder.resolve()
    return p == f or f in p.parents


def check_folder(final: Path, kind: FolderKind, overwrite: bool, others: Sequence[tuple[str, Path]] = ()) -> Path:
    """Refuse a folder output that is a file, holds (or would hold) one of ``others`` (what
    it is, its path: the input video, the output), holds files vcam did not write, or holds
    vcam's own files without ``overwrite``; return the folder its temporary folder goes in."""
    if final.exists() and not final.is_dir():
        raise OutputError(kind.is_file.format(final=final))
    for what, path in others:
        if _inside(path, final):
            verb = "holds" if path.exists() else "would hold"
            raise OutputError(f"{kind.what} {final} {verb} the {what} {path}; give an empty or new folder")
    if final.is_dir():
        names = sorted(os.listdir(final))
        foreign = [n for n in names if not kind.owns(n)]
        if foreign:
            raise OutputError(
                f"{kind.what} {final} holds files vcam did not write ({_listing(foreign)}); "
                f"vcam replaces only {kind.shown}: give an empty or new folder"
            )
        if names and not overwrite:
            raise OutputError(kind.exists.format(final=final, n=len(names)))
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{kind.what} {final}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{kind.what} {final}: folder {parent} is not writable")
    return parent


def _cannot_place(what: str, final: Path, files: str, exc: OSError, left: Path | None) -> OutputError:
    parent = _absolute(final).parent
    reason = f"folder {final.parent} no longer exists" if not parent.is_dir() else exc.strerror or str(exc)
    text = f"{what} {final}: cannot put the finished {files} in place ({reason})"
    if left is not None and os.path.lexists(left):
        text += f"; this run's result is left at {left}"
    return OutputError(text)


def link_no_replace(tmp: Path, final: Path) -> None:
    """Move ``tmp`` to ``final`` only if nothing is there, not even a dangling symlink
    (FileExistsError otherwise): ``os.link``, or where the file system has no hard links an
    exclusive create that claims the name, then a rename onto it."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # claims the name, or FileExistsError
        os.close(fd)
        os.replace(tmp, final)
    else:
        os.unlink(tmp)


def write_new_file(path: Path, data: bytes, *, force: bool, exists: str) -> None:
    """Write a small file whole: ``data`` goes to a hidden temporary file beside ``path``
    (fsynced), which is then put in place with :func:`link_no_replace` (so an existing name,
    even a dangling symlink, is kept and ``OutputError(exists)`` raised) or, with ``force``,
    renamed over it. The folder is created when missing; no temporary file is left. Callers
    hold the stop signals around it (:func:`vcam.signals.hold_stop_signals`) so that the
    folder holds the old file or the complete new one whenever a signal comes."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_file_beside(path, path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path} ({exc.strerror})") from exc
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
        else:
            link_no_replace(tmp, path)
    except FileExistsError:
        raise OutputError(exists) from None
    except OSError as exc:
        raise OutputError(f"cannot write {path} ({exc.strerror})") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _divert_file(tmp: Path, final: Path) -> Path:
    base = _absolute(final)
    for i in range(1, _ALT_TRIES):
        alt = base.with_name(f"{base.stem}-{i}{base.suffix}")
        try:
            link_no_replace(tmp, alt)
        except FileExistsError:
            continue
        return alt if final.is_absolute() else Path(os.path.relpath(alt))
    raise FileExistsError(errno.EEXIST, f"no free name beside {final}")


def _divert_folder(tmp: Path, final: Path) -> Path:
    base = _absolute(final)
    for i in range(1, _ALT_TRIES):
        alt = base.with_name(f"{base.name}-{i}")
        try:
            alt.mkdir(0o777)  # claims the name
            os.rename(tmp, alt)  # onto our own empty folder
        except OSError as exc:
            if exc.errno in _TAKEN:
                continue
            raise
        return alt if final.is_absolute() else Path(os.path.relpath(alt))
    raise FileExistsError(errno.EEXIST, f"no free name beside {final}")


def place_file(tmp: Path, final: Path, overwrite: bool, what: str = "output") -> None:
    """Move the finished file ``tmp`` onto ``final`` (see the module notes); raises
    OutputError when it is not there afterwards."""
    try:
        try:
            if overwrite:
                os.replace(tmp, final)
            else:
                link_no_replace(tmp, final)
            return
        except FileExistsError:
            alt = _divert_file(tmp, final)
            raise OutputError(
                f"{what} {final} appeared while processing; kept it and wrote this run's result to {alt}; "
                "pass --overwrite to replace it"
            ) from None
        except IsADirectoryError:
            alt = _divert_file(tmp, final)
            raise OutputError(
                f"{what} {final} became a folder while processing; kept it and wrote this run's result to {alt}"
            ) from None
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _cannot_place(what, final, "file", exc, tmp) from exc


def place_folder(tmp: Path, final: Path, kind: FolderKind, overwrite: bool) -> None:
    """Move the files of the finished folder ``tmp`` into ``final`` (see the module notes);
    raises OutputError when they are not there afterwards."""
    try:
        if not os.path.lexists(final):
            try:
                os.rename(tmp, final)
                return
            except OSError as exc:
                if exc.errno not in _TAKEN:
                    raise
                # it appeared meanwhile: go on as for a folder that was there
        if not final.is_dir():
            alt = _divert_folder(tmp, final)
            raise OutputError(
                f"{kind.what} {final} appeared as a file while processing; kept it and wrote this run's files to {alt}"
            )
        clash = sorted(n for n in os.listdir(final) if kind.owns(n))
        if clash and not overwrite:
            alt = _divert_folder(tmp, final)
            raise OutputError(
                f"{kind.what} {final}: {_listing(clash)} appeared in it while processing; kept "
                f"{'it' if len(clash) == 1 else 'them'} and wrote this run's files to {alt}; pass --overwrite to replace them"
            )
        for name in clash:  # vcam's own files of an earlier run (overwrite)
            (final / name).unlink(missing_ok=True)
        for name in os.listdir(tmp):
            os.replace(tmp / name, final / name)
        os.rmdir(tmp)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _cannot_place(kind.what, final, "files", exc, tmp) from exc
