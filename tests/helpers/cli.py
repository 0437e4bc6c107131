"""Running vcam from tests: in this process (:func:`run_cli`), in a child process
(:func:`spawn_vcam`), and waiting for a condition with a generous bound (:func:`wait_for`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import REPO


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``vcam ARGV...`` in this process: (exit status, stdout, stderr)."""
    from vcam.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_line(text: str) -> str:
    """The last non-blank line of ``text``."""
    return [line for line in text.splitlines() if line.strip()][-1]


def spawn_vcam(args: list[str]) -> subprocess.Popen[bytes]:
    """``vcam ARGS...`` in a child process, with this test's HOME/XDG/VCAM_MODEL_DIR environment."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "vcam", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition",
             proc: subprocess.Popen[Any] | None = None) -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded; for real threads and
    processes only). With ``proc``, a child that exits first fails the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
