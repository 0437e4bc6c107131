"""Test helpers, imported as ``tests.helpers.<module>``: ``media`` (writing and reading video
files, generated frames), ``fakes`` (sources, engines, sinks, clocks, a pyvirtualcam backend),
``desktop`` (a controller rig), ``cli`` (running vcam in this process or a child, waiting)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EVALDATA = REPO.parent / "shared" / "evaldata"
