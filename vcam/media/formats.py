"""Output formats for file mode: which encoder, pixel format and container a path gets.

The table is deliberately small: what players and editors read.

===========  =============  ===================  ==============  ======================
``--codec``  encoder        pixel format         with alpha      containers
===========  =============  ===================  ==============  ======================
h264         libx264        yuv420p              (none)          .mp4 .m4v .mov .mkv
hevc         libx265        yuv420p              (none)          .mp4 .m4v .mov .mkv
vp9          libvpx-vp9     yuv420p              yuva420p        .webm .mkv (.mp4 opaque)
prores       prores_ks      yuv422p10le (HQ)     yuva444p10le    .mov .mkv
png          (image files)  rgb24                rgba            a folder of PNG files
(from name)  (one image)    rgb24                rgba (PNG)      .png .jpg .jpeg: one still picture
===========  =============  ===================  ==============  ======================

Transparency (``--mode remove``) needs VP9 in WebM/Matroska, ProRes 4444 in MOV/Matroska,
or a PNG sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vcam.errors import OutputError

__all__ = [
    "CODECS",
    "CONTAINERS",
    "IMAGE_SUFFIXES",
    "ENCODER_PRESETS",
    "OutputFormat",
    "VideoCodec",
    "default_extension",
    "resolve_output_format",
]

ENCODER_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# libvpx's speed knob for the same names (higher is faster)
_VP9_CPU_USED = {"ultrafast": 8, "superfast": 8, "veryfast": 7, "faster": 6, "fast": 5, "medium": 4,
                 "slow": 3, "slower": 2, "veryslow": 1}


@dataclass(frozen=True, slots=True)
class VideoCodec:
    """One ``--codec`` choice. ``crf`` is its default quality (None: the codec has no CRF)."""

    name: str
    encoder: str
    pix_fmt: str
    alpha_pix_fmt: str | None
    crf: int | None
    crf_range: tuple[int, int] | None
    extension: str

    def options(self, crf: int | None, preset: str, alpha: bool) -> dict[str, str]:
        """Encoder options (FFmpeg private options) for a quality and a speed preset."""
        q = self.crf if crf is None else crf
        if self.encoder == "libx264":
            return {"crf": str(q), "preset": preset}
        if self.encoder == "libx265":
            return {"crf": str(q), "preset": preset, "x265-params": "log-level=error"}
        if self.encoder == "libvpx-vp9":
            return {"crf": str(q), "b:v": "0", "row-mt": "1", "deadline": "good",
                    "cpu-used": str(_VP9_CPU_USED[preset])}
        if self.encoder == "prores_ks":
            # 4444 keeps an alpha plane; HQ otherwise. The Apple vendor tag makes editors happy.
            return {"profile": "4" if alpha else "3", "vendor": "apl0"}
        return {}


CODECS: dict[str, VideoCodec] = {
    "h264": VideoCodec("h264", "libx264", "yuv420p", None, 18, (0, 51), ".mp4"),
    "hevc": VideoCodec("hevc", "libx265", "yuv420p", None, 22, (0, 51), ".mp4"),
    "vp9": VideoCodec("vp9", "libvpx-vp9", "yuv420p", "yuva420p", 30, (0, 63), ".webm"),
    "prores": VideoCodec("prores", "prores_ks", "yuv422p10le", "yuva444p10le", None, None, ".mov"),
    "png": VideoCodec("png", "png", "rgb24", "rgba", None, None, ""),
    "image": VideoCodec("image", "image", "rgb24", "rgba", None, None, ""),  # one still picture, by its suffix
}
# a still picture's suffix → (its format, whether it keeps alpha)
IMAGE_SUFFIXES: dict[str, tuple[str, bool]] = {".png": ("png", True), ".jpg": ("jpeg", False), ".jpeg": ("jpeg", False)}
# suffix → (FFmpeg muxer, codecs it takes, codecs that keep alpha in it)
CONTAINERS: dict[str, tuple[str, frozenset[str], frozenset[str]]] = {
    ".mp4": ("mp4", frozenset({"h264", "hevc", "vp9"}), frozenset()),
    ".m4v": ("mp4", frozenset({"h264", "hevc"}), frozenset()),
    ".mov": ("mov", frozenset({"h264", "hevc", "prores"}), frozenset({"prores"})),
    ".mkv": ("matroska", frozenset({"h264", "hevc", "vp9", "prores"}), frozenset({"vp9", "prores"})),
    ".webm": ("webm", frozenset({"vp9"}), frozenset({"vp9"})),
}
_DEFAULT_CODEC = {".mp4": "h264", ".m4v": "h264", ".mov": "h264", ".mkv": "h264", ".webm": "vp9"}
_DEFAULT_ALPHA_CODEC = {".mov": "prores", ".mkv": "vp9", ".webm": "vp9"}


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """What one output is written as. ``container`` is the FFmpeg muxer (None for PNG files)."""

    codec: VideoCodec
    container: str | None
    alpha: bool

    @property
    def png_sequence(self) -> bool:
        return self.codec.name == "png"

    @property
    def still_image(self) -> bool:
        """One picture in an image file (``container`` is ``png`` or ``jpeg``)."""
        return self.codec.name == "image"


def default_extension(codec: str | None, transparent: bool) -> str:
    """The file suffix a batch output gets when only a folder is given ("" = a PNG folder)."""
    if codec is not None:
        return CODECS[codec].extension
    return ".mov" if transparent else ".mp4"


def resolve_output_format(path: Path, codec: str | None, transparent: bool) -> OutputFormat:
    """Pick the encoder and container for ``path``; raise :class:`OutputError` for combinations
    that cannot work, saying which would."""
    if codec == "png":
        return OutputFormat(CODECS["png"], None, transparent)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES and codec is None:
        kind, keeps_alpha_ = IMAGE_SUFFIXES[suffix]
        if transparent and not keeps_alpha_:
            raise OutputError(f"output {path}: a {suffix} picture cannot keep transparency for --mode remove; use .png")
        return OutputFormat(CODECS["image"], kind, transparent)
    if suffix not in CONTAINERS:
        known = " ".join(CONTAINERS)
        raise OutputError(
            f"output {path}: cannot write a '{suffix or path.name}' file; name it with one of {known}, "
            f"a still picture {' '.join(IMAGE_SUFFIXES)}, or pass --codec png for a folder of PNG files"
        )
    muxer, takes, keeps_alpha = CONTAINERS[suffix]
    if codec is None:
        codec = _DEFAULT_ALPHA_CODEC.get(suffix) if transparent else _DEFAULT_CODEC[suffix]
        if codec is None:
            raise OutputError(
                f"output {path}: --mode remove needs a format that keeps transparency: .mov (ProRes 4444), "
                f".webm or .mkv (VP9 with alpha), or --codec png; {suffix} has none"
            )
    if codec not in takes:
        fits = " ".join(s for s, (_, t, _) in CONTAINERS.items() if codec in t)
        raise OutputError(f"output {path}: {codec} cannot be written into a {suffix} file; use {fits}")
    if transparent and codec not in keeps_alpha:
        raise OutputError(
            f"output {path}: {codec} in {suffix} cannot keep transparency for --mode remove; use .mov "
            "(ProRes 4444), .webm or .mkv (VP9 with alpha), or --codec png"
        )
    return OutputFormat(CODECS[codec], muxer, transparent)
