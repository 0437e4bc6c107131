"""Audio that the output's container cannot hold is re-encoded (AAC into WebM: Opus), with a
log line; what it can hold is still copied packet for packet (MOV, MKV); ``--audio`` chooses."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest

from tests.helpers.cli import run_cli
from tests.helpers.fakes import FakeEngine
from tests.helpers.media import color_frames, decode_rgba, probe, write_clip
from vcam.config import Config
from vcam.files.process import FileOptions, process_file


def _decoded(path: Path) -> tuple[np.ndarray, int]:
    """The first audio track, decoded: (channels, samples) float32 and its sample rate."""
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        chunks = [f.to_ndarray() for f in c.decode(s)]
        rate = s.codec_context.sample_rate
    planar = [ch if ch.ndim == 2 and ch.shape[0] == 2 else ch.reshape(-1, 2).T for ch in chunks]
    return np.concatenate(planar, axis=1).astype(np.float32), rate


def _peak_hz(signal: np.ndarray, rate: int) -> float:
    """The strongest frequency, rounded to the FFT's resolution (``rate / signal.size``)."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.fft.rfftfreq(signal.size, 1 / rate)[int(np.argmax(spectrum))])


def _near(hz: float, tone: float, signal: np.ndarray, rate: int) -> bool:
    return abs(hz - tone) <= rate / signal.size


def test_transparent_webm_from_aac_gets_opus_audio_with_a_log_line(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(25, (64, 48)), rate=25)  # 1 s, AAC stereo tone
    out = tmp_path / "cut.webm"
    with caplog.at_level(logging.INFO, logger="vcam"):
        code, stdout, _ = run_cli(
            capsys, "process", str(inp), "-o", str(out), "--mode", "remove", "--model-input", "64x48"
        )
    assert (code, stdout) == (0, f"wrote {out} (25 frames)\n")
    assert (
        f"output {out}: audio stream 1 (aac): it cannot be copied into this file type; re-encoding it to Opus "
        "(--audio copy refuses instead, --audio drop leaves it out)"
    ) in caplog.messages
    got = probe(out)
    assert (got.codec, got.audio_codecs) == ("vp9", ["opus"])
    assert len(decode_rgba(out)) == 25  # still transparent VP9, every frame
    samples, rate = _decoded(out)
    assert rate == 48000
    assert abs(samples.shape[1] / rate - 1.0) < 0.05  # the tone's second, less the encoders' edges
    middle = samples[:, 4800:43200]  # away from the codec delay and the end
    assert _near(_peak_hz(middle[0], rate), 440, middle[0], rate)
    assert _near(_peak_hz(middle[1], rate), 660, middle[1], rate)
    # the tone's level (amplitude 0.3: RMS 0.212; measured 0.2124 and 0.2113, as the AAC input's)
    rms = np.sqrt((middle**2).mean(axis=1))
    assert np.all(np.abs(rms - 0.3 / np.sqrt(2)) < 0.005), rms
    original, _ = _decoded(inp)
    assert samples.shape == original.shape  # measured: 47104 samples each


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_mov_and_mkv_keep_copying_the_aac_packets(tmp_path: Path, suffix: str) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(10, (64, 48)))
    out = tmp_path / f"o{suffix}"
    process_file(Config(), inp, out, FileOptions(transparent=True), engine=FakeEngine())
    assert probe(out).audio_codecs == ["aac"]
    assert [p[2] for p in probe(out).audio[0]] == [p[2] for p in probe(inp).audio[0]]  # bit for bit


def test_reencode_and_drop_on_request(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(10, (64, 48)))
    again = tmp_path / "again.mp4"
    process_file(Config(), inp, again, FileOptions(audio_policy="reencode"), engine=FakeEngine())
    assert probe(again).audio_codecs == ["aac"]
    assert [p[2] for p in probe(again).audio[0]] != [p[2] for p in probe(inp).audio[0]]  # new packets
    samples, rate = _decoded(again)
    left = samples[0, 2048:14336]
    assert _near(_peak_hz(left, rate), 440, left, rate)


def test_audio_drop_from_the_command_line(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(5, (64, 48)))
    out = tmp_path / "o.webm"
    code, _, _ = run_cli(
        capsys, "process", str(inp), "-o", str(out), "--audio", "drop", "--model-input", "64x48"
    )
    assert code == 0 and probe(out).audio == []
