"""Which ONNX Runtime is installed, and the one clear error when none is.

vcam's runtime comes from an extra, so that an install has exactly one of the two wheels:
``pip install '.[cpu]'`` (``onnxruntime``) or ``pip install '.[gpu]'`` (``onnxruntime-gpu``).
Both wheels write the same ``onnxruntime`` package, so with both installed whichever was
installed last wins file by file: often a CPU-only build or a broken import. A plain
``pip install .`` brings none; the engine then stops with :data:`NOT_INSTALLED`.
"""

from __future__ import annotations

from importlib import metadata
from types import ModuleType

from vcam.errors import ModelError

__all__ = ["BOTH_FIX", "INSTALL", "NOT_INSTALLED", "RUNTIMES", "import_onnxruntime", "installed_runtimes"]

RUNTIMES = ("onnxruntime", "onnxruntime-gpu")
INSTALL = (
    "in the vcam folder: pip install '.[cpu]' (or '.[gpu]' for an NVIDIA GPU; pipx install '.[cpu]' likewise)"
)
NOT_INSTALLED = f"ONNX Runtime is not installed (vcam needs onnxruntime or onnxruntime-gpu); {INSTALL}"
BOTH_FIX = "pip uninstall -y onnxruntime onnxruntime-gpu, then in the vcam folder: pip install '.[gpu]' (or '.[cpu]')"


def installed_runtimes() -> list[str]:
    """The ONNX Runtime distributions installed in this environment, of :data:`RUNTIMES`."""
    found = []
    for name in RUNTIMES:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def import_onnxruntime() -> ModuleType:
    """``import onnxruntime``; raises :class:`ModelError` (:data:`NOT_INSTALLED`) when it is
    not installed, rather than a bare ImportError."""
    try:
        import onnxruntime
    except ModuleNotFoundError as exc:
        if exc.name != "onnxruntime":  # a dependency of an installed onnxruntime: not ours to explain
            raise
        raise ModelError(NOT_INSTALLED) from exc
    return onnxruntime
