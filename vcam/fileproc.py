"""File mode (``vcam process``): every frame of a video through the engine and compositor.

Nothing is dropped; the output keeps the input's size, frame count and timestamps, and is
written under a temporary name that replaces the output only when complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from vcam.app import build_engine, finish_sink, summarize, write_stats
from vcam.compositing import Compositor, PassThrough, make_compositor
from vcam.compositing.refine import make_refiner
from vcam.config import Config
from vcam.errors import OutputError
from vcam.frames import Frame
from vcam.matting.models import ProgressFactory
from vcam.pipeline import Pipeline
from vcam.sinks.file import FileSink
from vcam.sources.file import FileSource

__all__ = ["process_file"]


class _AlphaOnly(PassThrough):
    """Mode ``off`` in file mode when mattes are wanted: the picture unchanged, alpha computed."""

    needs_alpha = True


@contextlib.contextmanager
def _matte_dir(path: str | None, overwrite: bool) -> Iterator[Path | None]:
    """A temporary folder beside ``path`` that becomes ``path`` only when the run succeeds."""
    if path is None:
        yield None
        return
    final = Path(path).expanduser()
    if final.exists() and not final.is_dir():
        raise OutputError(f"matte folder {final} is a file; give a folder path")
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise OutputError(f"matte folder {final} is not empty; pass --overwrite to replace it")
    parent = final.parent
    if not parent.is_dir():
        raise OutputError(f"matte folder {final}: folder {parent} does not exist")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=parent))
    except OSError as exc:
        raise OutputError(f"matte folder {final}: cannot write in {parent} ({exc.strerror})") from exc
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def process_file(
    cfg: Config,
    input_path: str,
    output_path: str,
    *,
    matte_out: str | None = None,
    overwrite: bool = False,
    stats_json: str | None = None,
    progress: ProgressFactory | None = None,
    frame_progress: Callable[[int | None], Callable[[int], None]] | None = None,
    crf: int = 18,
) -> dict[str, object]:
    """Run the engine and compositor over every frame of a video file (nothing dropped).

    The output has the input's size, frame count and timestamps. With ``matte_out``, the
    alpha of every frame is written as ``000000.png``, ... (8-bit, 255 = person).
    """
    inp, outp = Path(input_path).expanduser(), Path(output_path).expanduser()
    if inp.resolve() == outp.resolve():
        raise OutputError(f"output {outp} is the input file; choose another output name")
    if outp.exists() and not overwrite:
        raise OutputError(f"output {outp} already exists; pass --overwrite to replace it")
    source = FileSource(inp, what="input video")
    try:
        size, rate = source.size, source.reader.rate
        engine = build_engine(cfg, progress)
        compositor: Compositor = make_compositor(cfg.effect, size, float(rate))
        if matte_out is not None and not compositor.needs_alpha:
            compositor = _AlphaOnly()
        with _matte_dir(matte_out, overwrite) as mdir:
            sink = FileSink(outp, size, rate, time_base=source.reader.time_base, preset="medium", crf=crf, overwrite=overwrite)
            ok = False
            try:
                on_alpha = None
                if mdir is not None:
                    folder = mdir

                    def on_alpha(frame: Frame, alpha: np.ndarray) -> None:
                        a8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
                        if not cv2.imwrite(str(folder / f"{frame.index:06d}.png"), a8):
                            raise OutputError(f"matte folder {matte_out}: cannot write {frame.index:06d}.png")

                pipeline = Pipeline(
                    source, engine, compositor, sink, output_size=size,
                    mirror=cfg.effect.mirror, on_alpha=on_alpha, refiner=make_refiner(cfg.model.refine),
                )
                tick = frame_progress(source.reader.frame_count or None) if frame_progress else None
                while pipeline.step():
                    if tick is not None:
                        tick(1)
                ok = True
            finally:
                finish_sink(sink, ok)
                close = getattr(compositor, "close", None)
                if close is not None:
                    close()
    finally:
        source.close()
    summary = summarize(pipeline, engine)
    summary["input"], summary["output"] = str(inp), str(outp)
    write_stats(stats_json, summary)
    return summary
