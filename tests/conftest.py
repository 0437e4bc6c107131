"""Shared fixtures: the real RVM model (fetched once, cached) and an isolated HOME. Helpers
(media, fakes, the CLI, waiting) live in :mod:`tests.helpers`."""

from __future__ import annotations

from pathlib import Path

# isort: off
import vcam  # noqa: F401 - loads OpenCV before PyAV (see vcam/__init__.py)

# isort: on
import pytest

from vcam.matting.models import default_model_dir, ensure_model


def pytest_configure(config: pytest.Config) -> None:
    """One numba cache for the whole run, in the real user's cache folder: the tests give every
    vcam they start a HOME of its own, where vcam's compiled loops would be compiled again
    (about 0.6 s a process) and left in the test's user area."""
    import os

    from vcam.compositing.jit import cache_dir

    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir()))
    # vcam keeps a stop signal ignored that it was started ignoring (``nohup vcam ...``); the
    # vcam commands the tests start must get SIGHUP as a terminal sends it, even when this
    # run was itself started under nohup
    import signal

    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The verified RVM MobileNetV3 model, fetched into the user cache on first use."""
    return ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir())


@pytest.fixture(scope="session")
def model_dir(model_path: Path) -> Path:
    return model_path.parent


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> Path:
    """HOME and XDG dirs inside tmp_path (no user config leaks in); models from the shared cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("VCAM_MODEL_DIR", str(model_dir))
    return home
