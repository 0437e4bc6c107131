"""Compositing math on known pixels, for every mode."""

import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.helpers.media import write_video
from vcam.compositing import (
    BlurCompositor,
    ColorCompositor,
    PassThrough,
    ReplaceCompositor,
    blend,
    make_compositor,
)
from vcam.compositing.backgrounds import ImageBackground, VideoBackground, load_background, load_image
from vcam.compositing.refine import upsample_alpha
from vcam.config import EffectConfig
from vcam.errors import InputError
from vcam.frames import cover_fit, enlarge


def _img(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    out = np.empty((h, w, 3), np.uint8)
    out[:] = rgb
    return out


def test_blend_known_pixels() -> None:
    fg, bg = _img(2, 3, (200, 100, 0)), _img(2, 3, (0, 100, 200))
    alpha = np.array([[1.0, 0.0, 0.5], [0.25, 0.75, 1.0]], np.float32)
    out = blend(fg, bg, alpha)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert out[0, 0].tolist() == [200, 100, 0]
    assert out[0, 1].tolist() == [0, 100, 200]
    assert out[0, 2].tolist() == [100, 100, 100]
    assert out[1, 0].tolist() == [50, 100, 150]
    assert out[1, 1].tolist() == [150, 100, 50]


def test_blend_matches_the_formula_rounded_once() -> None:
    rng = np.random.default_rng(5)
    fg, bg = (rng.integers(0, 256, (75, 50, 3), dtype=np.uint8) for _ in range(2))
    a8 = rng.integers(0, 256, (75, 50), dtype=np.uint8)
    a8[0, :4] = (0, 255, 0, 255)  # the two ends are exact
    a = a8.astype(np.float64)[..., None] / 255
    exact = fg * a + bg * (1 - a)
    out = blend(fg, bg, a8)
    assert np.array_equal(out, np.rint(exact).astype(np.uint8)) or float(np.abs(out - exact).max()) <= 0.5 + 1e-9
    assert out[0, 1].tolist() == fg[0, 1].tolist() and out[0, 0].tolist() == bg[0, 0].tolist()
    assert np.array_equal(blend(fg, bg, a8.astype(np.float32) / 255), out)
    # views that are not contiguous (a mirrored picture) give the same result
    assert np.array_equal(blend(fg[:, ::-1], bg[:, ::-1], a8[:, ::-1]), out[:, ::-1])
    dst = np.zeros_like(fg)
    assert blend(fg, bg, a8, out=dst) is dst and np.array_equal(dst, out)
    in_place = bg.copy()
    assert np.array_equal(blend(fg, in_place, a8, out=in_place), out)
    with pytest.raises(ValueError, match="shapes differ"):
        blend(fg, bg[:-1], a8)
    with pytest.raises(ValueError, match="must be uint8"):
        blend(fg.astype(np.float32), bg, a8)


def test_blend_reads_picture_and_alpha_packed_in_one_rgba_buffer_as_it_does_them_apart() -> None:
    from vcam.compositing.blend import packed_rgba

    rng = np.random.default_rng(8)
    rgba = rng.integers(0, 256, (40, 56, 4), dtype=np.uint8)
    rgba[0, :3, 3] = (0, 255, 1)  # background, person and the lightest edge
    fg, a8 = rgba[..., :3], rgba[..., 3]
    bg = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    lut = np.clip(np.arange(256) * 1.7, 0, 255).astype(np.uint8)
    assert packed_rgba(fg, a8) is rgba
    apart = np.ascontiguousarray(fg), np.ascontiguousarray(a8)
    assert packed_rgba(*apart) is None
    assert packed_rgba(rgba[:, 1:, :3], rgba[:, 1:, 3]) is None  # a part of it: not the whole buffer
    assert packed_rgba(rgba[..., 1:4], rgba[..., 0]) is None  # other channels
    assert np.array_equal(blend(fg, bg, a8), blend(apart[0], bg, apart[1]))
    assert np.array_equal(blend(fg, bg, a8, fg_lut=lut), blend(apart[0], bg, apart[1], fg_lut=lut))
    in_place = bg.copy()
    assert np.array_equal(blend(fg, in_place, a8, out=in_place), blend(apart[0], bg, apart[1]))


def test_alpha_to_u8_clips_out_of_range_float() -> None:
    from vcam.compositing.blend import alpha_to_u8

    assert alpha_to_u8(np.array([[-0.2, 0.5, 1.3]], np.float32)).tolist() == [[0, 128, 255]]


def test_color_mode() -> None:
    frame = _img(4, 4, (10, 20, 30))
    alpha = np.zeros((4, 4), np.float32)
    alpha[:2] = 1.0
    out = ColorCompositor((0, 177, 64))(frame, alpha)
    assert out[:2].reshape(-1, 3).tolist() == [[10, 20, 30]] * 8
    assert out[2:].reshape(-1, 3).tolist() == [[0, 177, 64]] * 8


def test_off_mode_passes_through_and_needs_no_alpha() -> None:
    frame = _img(4, 4, (1, 2, 3))
    pt = PassThrough()
    assert pt.needs_alpha is False
    assert pt(frame, None) is frame


def test_blur_keeps_the_person_and_blurs_the_background() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (72, 128, 3), dtype=np.uint8)
    alpha = np.zeros((72, 128), np.float32)
    alpha[20:60, 40:90] = 1.0
    out = BlurCompositor(20)(frame, alpha)
    assert np.array_equal(out[20:60, 40:90], frame[20:60, 40:90])
    # the noise of the background is smoothed away: far less variance than the input
    assert out[:, :30].std() < frame[:, :30].std() / 4


def test_blur_does_not_smear_the_person_into_the_background() -> None:
    frame = _img(90, 160, (0, 0, 0))
    frame[30:90, 60:100] = 255  # a white person on black
    alpha = np.zeros((90, 160), np.float32)
    alpha[30:90, 60:100] = 1.0
    comp = BlurCompositor(30)
    bg = comp.background(frame, alpha)
    # right next to the person the blurred background is still black (no white halo)
    assert int(bg[60, 55].max()) <= 2
    assert int(bg[60, 105].max()) <= 2


def _scene(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A textured 720p-like frame (smooth shapes plus fine noise) and a person-shaped alpha."""
    rng = np.random.default_rng(7)
    coarse = cv2.resize(rng.integers(0, 256, (9, 16, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    frame = np.clip(coarse.astype(np.int16) + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, h), (w // 5, h * 4 // 5), 0, 180, 360, 1.0, -1)
    return frame, cv2.GaussianBlur(alpha, (0, 0), 2)


def test_blur_from_the_model_view_matches_the_full_size_blur() -> None:
    from vcam.compositing import LowRes
    from vcam.matting.engine import shrink_frame

    for size, model in (((1280, 720), (384, 216)), ((640, 480), (384, 216))):  # 4:3 is stretched to 16:9
        frame, alpha = _scene(size[1], size[0])
        low = LowRes(shrink_frame(frame, model), cv2.resize(alpha, model, interpolation=cv2.INTER_AREA))
        comp = BlurCompositor(20)
        full = comp.background(frame, alpha).astype(np.int16)
        fast = comp.background(frame, alpha, low).astype(np.int16)
        diff = np.abs(full - fast)[alpha < 0.5]  # where the background shows
        assert float(diff.mean()) < 1.5 and float(np.percentile(diff, 99)) <= 6


def test_blur_uses_the_model_view_only_when_the_blur_is_resolved_there() -> None:
    from vcam.compositing import LowRes

    frame = _img(720, 1280, (0, 0, 0))
    alpha = np.zeros((720, 1280), np.uint8)
    red = LowRes(_img(216, 384, (255, 0, 0)), np.zeros((216, 384), np.float32))  # not this frame: visible
    assert BlurCompositor(20).background(frame, alpha, red)[360, 640].tolist() == [255, 0, 0]
    # strength 4 is sigma 1.2 px at 216 lines: too fine there, so the full-size frame is used
    assert BlurCompositor(4).background(frame, alpha, red)[360, 640].tolist() == [0, 0, 0]


def test_blur_strength_scales_with_picture_height() -> None:
    from vcam.compositing.blur import blur_sigma

    assert blur_sigma(20, 720) == 20.0
    assert blur_sigma(20, 1080) == 30.0
    assert blur_sigma(10, 360) == 5.0


def test_enlarge_is_cv2_resize_bilinear_within_one_level() -> None:
    rng = np.random.default_rng(5)
    for shape, size in (((216, 384), (1280, 720)), ((48, 56, 4), (84, 72)), ((27, 48, 3), (1280, 720))):
        src = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (5, 5), 1.5)
        out = enlarge(src, size)
        ref = cv2.resize(src, size, interpolation=cv2.INTER_LINEAR)
        assert out.shape == ref.shape and out.dtype == np.uint8
        diff = np.abs(out.astype(np.int16) - ref)
        assert diff.max() <= 1 and diff.mean() < 0.2
    # a step from 0 to 255 over two pixels: the same ramp, the edges replicated
    ramp = enlarge(np.array([[0, 255]], np.uint8), (8, 1))[0]
    assert ramp.tolist() == [0, 0, 32, 96, 159, 223, 255, 255]
    assert cv2.resize(np.array([[0, 255]], np.uint8), (8, 1), interpolation=cv2.INTER_LINEAR)[0].tolist() == [0, 0, 32, 96, 159, 223, 255, 255]
    small = rng.random((9, 16), np.float32)
    assert np.abs(enlarge(small, (160, 90)) - cv2.resize(small, (160, 90), interpolation=cv2.INTER_LINEAR)).max() < 1e-5
    # into a part of a larger buffer, nothing around it touched
    buf = np.zeros((40, 50, 3), np.uint8)
    enlarge(np.full((4, 5, 3), 200, np.uint8), (20, 16), buf[10:26, 5:25])
    assert (buf[10:26, 5:25] == 200).all() and buf.sum() == 200 * 20 * 16 * 3
    # shrinking is cv2.resize's own
    big = rng.integers(0, 256, (90, 160), dtype=np.uint8)
    assert np.array_equal(enlarge(big, (80, 45)), cv2.resize(big, (80, 45), interpolation=cv2.INTER_LINEAR))


def test_cover_fit_scales_and_centre_crops_never_stretches() -> None:
    src = np.zeros((100, 400, 3), np.uint8)  # 4:1, left quarter red, rest blue
    src[:, :100] = (255, 0, 0)
    src[:, 100:] = (0, 0, 255)
    out = cover_fit(src, (100, 100))
    assert out.shape == (100, 100, 3)
    # 4:1 into 1:1: height fits, the middle 100 columns stay: all blue (the red quarter is cut)
    assert (out[..., 2] > 250).all() and (out[..., 0] < 5).all()
    tall = cover_fit(np.zeros((300, 100, 3), np.uint8), (160, 90))
    assert tall.shape == (90, 160, 3)


def test_replace_with_image(tmp_path: Path) -> None:
    p = tmp_path / "bg.png"
    Image.fromarray(_img(50, 100, (9, 8, 7))).save(p)
    comp = make_compositor(EffectConfig(mode="replace", background=str(p)), (64, 48), 30.0)
    assert isinstance(comp, ReplaceCompositor)
    frame = _img(48, 64, (200, 200, 200))
    alpha = np.zeros((48, 64), np.float32)
    alpha[:, :32] = 1.0
    out = comp(frame, alpha)
    assert out[:, :32].reshape(-1, 3).tolist() == [[200, 200, 200]] * (48 * 32)
    assert out[:, 32:].reshape(-1, 3).tolist() == [[9, 8, 7]] * (48 * 32)


def _index_video(tmp_path: Path, n: int, fps: int) -> Path:
    frames = []
    for i in range(n):
        frames.append(_img(32, 32, (40 * i % 256, 0, 0)))
    return write_video(tmp_path / "bg.mp4", frames, Fraction(fps))


def test_video_background_advances_at_the_output_rate_and_loops(tmp_path: Path) -> None:
    video = _index_video(tmp_path, 4, 10)  # 4 frames at 10 fps = 0.4 s
    bg = load_background(video, (32, 32), 30.0)
    assert isinstance(bg, VideoBackground)
    reds = [round(float(bg.frame(n)[..., 0].mean()) / 40) for n in range(27)]
    # output 30 fps: each 10 fps background frame is shown 3 times, then the video loops
    assert reds == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] * 2 + [0, 0, 0]
    bg.close()


def test_background_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^background image .*missing.png: file not found$"):
        ImageBackground(tmp_path / "missing.png", (32, 32))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match=r"^background image .*junk.png: not an image vcam can read \(PNG, JPEG, WebP, BMP, \.\.\.\)$"):
        load_image(junk)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match=r"^background video .*broken.mp4: cannot read it as a video"):
        load_background(broken, (32, 32), 30.0)


def test_huge_image_is_refused_before_decoding(tmp_path: Path) -> None:
    p = tmp_path / "huge.png"
    Image.new("L", (10000, 7000)).save(p, optimize=False)
    with pytest.raises(InputError, match=r"^background image .*huge.png: 10000x7000 is too large \(70 megapixels, at most 64\); scale it down first$"):
        load_image(p)


def test_upsample_alpha_bilinear_and_clipped() -> None:
    small = np.array([[0.0, 1.0], [1.0, 1.2]], np.float32)
    up = upsample_alpha(small, (4, 4))
    assert up.shape == (4, 4) and up.dtype == np.float32
    assert float(up.max()) == 1.0 and float(up.min()) == 0.0


def test_background_video_without_frames(tmp_path: Path) -> None:
    import av

    empty = tmp_path / "empty.avi"  # AVI keeps a video stream header without any frame
    with av.open(str(empty), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height = 32, 32
        c.start_encoding()
    with pytest.raises(InputError, match=r"^background video .*empty.avi: has no frames$"):
        load_background(empty, (32, 32), 30.0)


def _halves_jpeg(path: Path, orientation: int) -> Path:
    """A 32x16 JPEG stored with its left half white and right half black, tagged with EXIF
    ``orientation``. 4:4:4, quality 100 and 8x8-aligned halves decode to exact 0 and 255."""
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, :16] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    Image.fromarray(stored).save(path, "JPEG", quality=100, subsampling=0, exif=exif.tobytes())
    return path


def _split(h: int, w: int, first_white: bool, vertical: bool) -> np.ndarray:
    out = np.zeros((h, w, 3), np.uint8)
    if vertical:  # halves side by side
        out[:, : w // 2] = 255 if first_white else 0
        out[:, w // 2:] = 0 if first_white else 255
    else:  # halves one above the other
        out[: h // 2] = 255 if first_white else 0
        out[h // 2:] = 0 if first_white else 255
    return out


@pytest.mark.parametrize(("orientation", "expected"), [
    (1, _split(16, 32, first_white=True, vertical=True)),    # as stored
    (3, _split(16, 32, first_white=False, vertical=True)),   # turned 180 degrees
    (6, _split(32, 16, first_white=True, vertical=False)),   # turned 90 degrees clockwise: left goes on top
    (8, _split(32, 16, first_white=False, vertical=False)),  # turned 90 degrees anticlockwise: left goes below
])
def test_background_photo_is_turned_upright_by_its_exif_orientation(
    tmp_path: Path, orientation: int, expected: np.ndarray
) -> None:
    p = _halves_jpeg(tmp_path / f"phone-{orientation}.jpg", orientation)
    got = load_image(p)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)
    if orientation == 6:  # and the replace background is fitted from the upright picture
        assert np.array_equal(ImageBackground(p, (16, 32)).frame(0), expected)


def test_16_bit_grayscale_png_is_scaled_to_8_bit(tmp_path: Path) -> None:
    levels = np.array([[0, 257, 1000, 32896, 65534, 65535]], np.uint16)
    p = tmp_path / "deep.png"
    Image.fromarray(levels).save(p)
    assert Image.open(p).mode in ("I;16", "I")  # what Pillow makes of a 16-bit grey PNG
    got = load_image(p)
    assert got.dtype == np.uint8 and got.shape == (1, 6, 3)
    assert got[..., 0].tolist() == [[0, 1, 4, 128, 255, 255]]  # round(v * 255 / 65535)
    assert np.array_equal(got[..., 0], got[..., 1]) and np.array_equal(got[..., 0], got[..., 2])


def _png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose header says ``w`` x ``h`` (its pixels are never read): a huge image's
    size without writing gigabytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def test_an_image_over_pillows_bomb_limit_is_too_large_not_unreadable(tmp_path: Path) -> None:
    p = _png_header_only(tmp_path / "giant.png", 20000, 20000)  # 400 MP: Pillow refuses it at open
    with pytest.raises(InputError) as info:
        load_image(p)
    assert str(info.value) == (
        f"background image {p}: 20000x20000 is too large (400 megapixels, at most 64); scale it down first")


def test_compiled_loops_load_when_a_pipeline_is_put_together_not_at_import() -> None:
    """Importing the compositors does not import numba (bad input fails without it); building
    Stages loads every loop, so the first frame does not wait (and compiled loops that call
    each other, edges._band -> edges._levels, see each other compiled)."""
    import subprocess
    import sys

    code = (
        "import importlib, sys\n"
        "blend, blur, edges = (importlib.import_module(f'vcam.compositing.{m}') for m in ('blend', 'blur', 'edges'))\n"
        "print('numba' in sys.modules, type(blend._blend_u8).__name__, type(edges._band).__name__)\n"
        "from vcam.compositing import PassThrough\n"
        "from vcam.pipeline import Stages\n"
        "Stages(object(), PassThrough(), output_size=(64, 36))\n"
        "print('numba' in sys.modules, *sorted({type(f).__name__ for f in (blend._blend_u8, blur._normalise,\n"
        "    edges._levels, edges._collect, edges._band, edges._coefficients, edges._means, edges._apply)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines() == ["False Loop Loop", "True CPUDispatcher"], done.stderr


def test_compiled_loops_cache_in_the_user_cache_folder_not_in_the_package(tmp_path: Path) -> None:
    """numba used to cache beside the source: in an installed vcam, files pip does not know
    of, which shadowed a later (editable) install. A fresh process with its own cache folder
    writes its cache there and nothing new into the package."""
    import subprocess
    import sys

    import vcam.compositing

    package = Path(vcam.compositing.__file__).parent / "__pycache__"
    before = {p.name for p in package.glob("*.nb?")} if package.is_dir() else set()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    code = "import vcam.compositing.blur\nfrom vcam.compositing.jit import load_all\nload_all()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "vcam" / "numba").rglob("*.nbi"))
    assert cached == ["blend._blend_lut_u8", "blend._blend_rgba_lut_u8", "blend._blend_rgba_u8", "blend._blend_u8",
                      "blur._normalise"]
    after = {p.name for p in package.glob("*.nb?")} if package.is_dir() else set()
    assert after == before
