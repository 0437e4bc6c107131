"""The package layout keeps its promises: modes do not import each other, wings and the
foundation import no mode, and a real ``vcam process`` loads nothing of live mode (nor Ray)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.media import color_frames, write_video

VCAM = REPO / "vcam"
MODES = ("live", "files", "tools", "setup")
# who may import which mode: the CLI dispatches to all; tools and setup drive the modes
# they measure or diagnose; a mode never imports the other mode
MAY_IMPORT = {
    "live": {"live"},
    "files": {"files"},
    "tools": {"live", "files", "tools"},
    "setup": {"live", "setup"},
}


def _imports(path: Path) -> set[str]:
    """Every ``vcam.*`` module named by an import in ``path`` (module level or inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.startswith("vcam.")}


def _mode_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MODES else None


def test_no_module_imports_a_mode_it_may_not() -> None:
    wrong = []
    for path in sorted(VCAM.rglob("*.py")):
        rel = path.relative_to(VCAM)
        own = rel.parts[0] if len(rel.parts) > 1 else None
        if rel.as_posix() == "cli.py":
            continue  # parse + dispatch: the one module that reaches every mode
        allowed = MAY_IMPORT.get(own or "", set())
        for mod in sorted(_imports(path)):
            mode = _mode_of(mod)
            if mode is not None and mode not in allowed:
                wrong.append(f"{rel.as_posix()} imports {mod}")
    assert wrong == []


def test_top_level_holds_at_most_ten_modules() -> None:
    modules = sorted(p.name for p in VCAM.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert modules == [
        "backoff.py", "build.py", "cli.py", "commands.py", "config.py", "errors.py", "frames.py", "presets.py",
        "signals.py",
    ]


# nor Ray (the optional extra [cluster]), which only --executor ray imports
_LOADED = (
    "sorted(m for m in sys.modules if m == 'ray' or "
    "m.startswith(('vcam.live', 'vcam.tools', 'vcam.setup', 'vcam.files.ray_executor', 'ray.')))"
)


@pytest.mark.usefixtures("isolated_home")
def test_a_real_vcam_process_loads_nothing_of_live_mode(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "in.mp4", color_frames(3))
    out = tmp_path / "out.mp4"
    code = (
        "import sys\n"
        "from vcam.cli import main\n"
        f"rc = main(['process', {str(clip)!r}, '-o', {str(out)!r}, '--mode', 'color', '--model-input', '64x36'])\n"
        f"print(rc, {_LOADED})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    # the CLI builds the 'vcam ctl' parser from vcam/commands.py (foundation, pure data)
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr
    assert out.is_file()


@pytest.mark.usefixtures("isolated_home")
def test_vcam_process_help_loads_nothing_of_live_mode(tmp_path: Path) -> None:
    code = (
        "import contextlib, io, sys\n"
        "from vcam.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['process', '--help'])\n"
        "    except SystemExit as exc:\n"
        "        rc = exc.code\n"
        f"print(rc, {_LOADED})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr
    imports = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vcam", "process", "--help"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert imports.returncode == 0, imports.stderr
    assert [line for line in imports.stderr.splitlines() if "vcam.live" in line] == []


# what bad input to 'vcam run' must fail without: the compiled loops' numba (with llvmlite and
# the scipy numba imports) and the model's runtimes (docs/performance.md, "Bad input fails before
# numba loads")
_HEAVY = (
    "sorted({m.split('.')[0] for m in sys.modules} & "
    "{'numba', 'llvmlite', 'scipy', 'onnxruntime', 'openvino'})"
)


@pytest.mark.usefixtures("isolated_home")
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--source", "{tmp}/missing.mp4", "--output", "null"],
         "source {tmp}/missing.mp4: no such camera or video file"),
        (["--mode", "replace", "--background", "{tmp}/missing.png", "--source", "testpattern", "--output", "null"],
         "background image {tmp}/missing.png: file not found"),
        (["--source", "testpattern", "--output", "{tmp}/missing-dir/x.mp4"],
         "output {tmp}/missing-dir/x.mp4: folder {tmp}/missing-dir does not exist"),
    ],
    ids=["source", "background", "output"],
)
def test_bad_input_to_vcam_run_fails_before_numba_or_a_model_runtime_loads(
    tmp_path: Path, args: list[str], error: str
) -> None:
    args = [a.format(tmp=tmp_path) for a in args]
    code = (
        "import sys\n"
        "from vcam.cli import main\n"
        f"rc = main(['run', '--no-tray', *{args!r}])\n"
        f"print(rc, {_HEAVY})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.stdout.splitlines()[-1] == "1 []", done.stderr
    assert error.format(tmp=tmp_path) in done.stderr


def test_signal_handlers_are_installed_only_in_signals_py() -> None:
    calls = []
    for path in sorted(VCAM.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "signal"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "signal"
            ):
                calls.append(path.relative_to(VCAM).as_posix())
    assert sorted(set(calls)) == ["signals.py"]
