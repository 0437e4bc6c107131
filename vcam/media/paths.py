"""Hidden temporary outputs beside the final name, renamed onto it only when complete.

Unlike :mod:`tempfile` (which creates them private, 0600/0700), these get the permissions
an ordinary new file or folder gets (the process umask applies), so the renamed output is
not unexpectedly private.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["temp_dir_beside", "temp_file_beside"]

_TRIES = 100


def _name(final: Path, parent: Path, suffix: str) -> Path:
    return parent / f".{final.stem if suffix else final.name}.{secrets.token_hex(4)}.part{suffix}"


def temp_file_beside(final: Path, parent: Path) -> Path:
    """Create an empty ``.<stem>.<random>.part<suffix>`` in ``parent`` (raises OSError)."""
    for _ in range(_TRIES):
        path = _name(final, parent, final.suffix or ".tmp")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"no free temporary name beside {final}")


def temp_dir_beside(final: Path, parent: Path) -> Path:
    """Create an empty folder ``.<name>.<random>.part`` in ``parent`` (raises OSError)."""
    for _ in range(_TRIES):
        path = _name(final, parent, "")
        try:
            path.mkdir(0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free temporary name beside {final}")
