"""Test helpers, imported as ``tests.helpers.<module>``: ``media`` (writing and reading video
files, generated frames), ``fakes`` (sources, engines, sinks, clocks, a pyvirtualcam backend),
``desktop`` (a controller rig), ``cli`` (running vcam in this process or a child, waiting),
``tlsproxy`` (a local HTTPS proxy playing the model servers), ``photo`` (a real photograph of a
person from the scikit-image wheel, with reference boxes)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def evaldata() -> Path:
    """The evaluation data (real portraits with exact alpha, backgrounds): ``$VCAM_EVALDATA``,
    else ``../shared/evaldata`` beside the repository (where the developers' machines and CI
    have it). A plain clone has none: the test that needs it is skipped, saying so."""
    import pytest

    path = Path(os.environ.get("VCAM_EVALDATA") or REPO.parent / "shared" / "evaldata")
    if not (path / "sources").is_dir():
        pytest.skip(f"needs the evaluation data, not found at {path} (set VCAM_EVALDATA)")
    return path
