"""Scene cuts: an abrupt change of picture resets the recurrent state, motion does not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import evaldata
from tests.helpers.fakes import FakeEngine, ListSource, MemorySink, live_runner
from tests.helpers.media import portrait_frames, write_video
from vcam.compositing import PassThrough
from vcam.frames import Frame
from vcam.matting import MattingEngine
from vcam.pipeline.scenecut import SceneCutDetector
from vcam.sources.file import FileSource

SIZE = (320, 180)
N = 6  # frames per scene


def _second_scene(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """Another real portrait over another real background, drifting: RGB frames."""
    src = evaldata() / "sources"
    fg = cv2.cvtColor(cv2.imread(str(src / "portraits" / "p_22fc0130.jpg")), cv2.COLOR_BGR2RGB)
    al = cv2.imread(str(src / "portraits" / "p_22fc0130.alpha.png"), cv2.IMREAD_GRAYSCALE)
    bg = cv2.cvtColor(cv2.imread(str(src / "backgrounds" / "Wood.jpg")), cv2.COLOR_BGR2RGB)
    w, h = size
    scale = h * 0.9 / fg.shape[0]
    pw, ph = int(fg.shape[1] * scale), int(fg.shape[0] * scale)
    f = cv2.resize(fg, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
    a = cv2.resize(al, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255
    b = cv2.resize(bg, (w + 2 * n, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    out = []
    for t in range(n):
        img = b[:, 2 * t : 2 * t + w].copy()
        x0 = (w - pw) // 2 + t
        img[h - ph :, x0 : x0 + pw] = f * a + img[h - ph :, x0 : x0 + pw] * (1 - a)
        out.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """Two different clips joined into one video file, decoded back: 2 * N RGB frames."""
    first, _ = portrait_frames(N, SIZE)
    path = write_video(tmp_path_factory.mktemp("cut") / "joined.mp4", first + _second_scene(N, SIZE))
    src = FileSource(path)
    frames = []
    while (f := src.read()) is not None:
        frames.append(f.image)
    src.close()
    assert len(frames) == 2 * N
    return frames


def test_detector_fires_exactly_at_the_join(joined: list[np.ndarray]) -> None:
    det = SceneCutDetector()
    assert [det.update(f) for f in joined] == [i == N for i in range(2 * N)]
    assert det.cuts == 1


def test_detector_ignores_motion_and_starts_fresh_after_reset() -> None:
    det = SceneCutDetector()
    frames, _ = portrait_frames(8, SIZE)
    assert not any(det.update(f) for f in frames)
    det.reset()
    assert det.update(_second_scene(1, SIZE)[0]) is False  # nothing to compare with after reset
    assert det.last_scores is None


def test_detector_scores_a_black_to_white_switch() -> None:
    det = SceneCutDetector()
    det.update(np.zeros((36, 64, 3), np.uint8))
    assert det.update(np.full((36, 64, 3), 255, np.uint8)) is True
    assert det.last_scores == (255.0, 1.0)


def _run(frames: list[np.ndarray], engine: object, scene_cuts: bool) -> list[np.ndarray]:
    alphas: list[np.ndarray] = []

    class _NeedsAlpha(PassThrough):
        needs_alpha = True

    def keep(frame: Frame, alpha: np.ndarray) -> None:
        alphas.append(alpha.copy())

    p = live_runner(ListSource(frames), engine, _NeedsAlpha(), MemorySink(), output_size=SIZE,
                 on_alpha=keep, scene_cuts=scene_cuts)
    while p.step():
        pass
    return alphas


def test_pipeline_resets_the_engine_at_a_cut(joined: list[np.ndarray]) -> None:
    with_cuts, without = FakeEngine(), FakeEngine()
    _run(joined, with_cuts, scene_cuts=True)
    _run(joined, without, scene_cuts=False)
    assert (with_cuts.resets, without.resets) == (2, 1)  # the first frame, then the cut
    assert with_cuts.frames_since_reset == N


def test_no_matte_bleeds_across_the_cut(joined: list[np.ndarray], model_path: Path) -> None:
    """After the cut the mattes are exactly those of the second clip run on its own."""

    def engine() -> MattingEngine:
        return MattingEngine(model_path, providers=("cpu",), threads=1, input_size=(128, 72), downsample_ratio=0.5)

    alone = _run(joined[N:], engine(), scene_cuts=True)
    cut = _run(joined, engine(), scene_cuts=True)[N:]
    bleed = _run(joined, engine(), scene_cuts=False)[N:]
    assert all(np.array_equal(a, b) for a, b in zip(cut, alone, strict=True))
    assert float(np.abs(bleed[0] - alone[0]).max()) > 0.05  # without the reset, scene one leaks in
