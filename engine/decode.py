"""One image file to the model's input: the one decode every part of fmnist-tui uses.

``decode_image`` turns a PNG, JPEG, GIF or WebP file into the uint8 H x W grey array a
model takes, the same way for custom-dataset loading (``engine.image_files``),
``fmnist-tui predict``, ``Predictor.predict_files`` and the Inspect pane:

- EXIF orientation is applied (a phone's photo stands as it was taken);
- 16-bit samples keep their high byte (65535 -> 255, 257 * k -> k);
- palette, 1-bit, CMYK and YCbCr images become RGB or grey;
- transparency follows the ``alpha`` policy (``ALPHA_POLICIES``);
- colour becomes luminance (ITU-R BT.601, as PIL's "L" mode), is refused, or is kept as
  H x W x 3 RGB with grey images copied into three equal channels (``color``);
- another size is resized (antialiased bilinear), centre-padded/cropped, or refused.

Decoding is Pillow's, in this process: nothing is written to file descriptor 2 (the app
draws the screen there), and no library warning or internal path reaches the user.
Neither torch nor torchvision is imported here. ``DECODER_VERSION`` names this decoder,
so arrays cached by another one are never reused.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import files
from engine.fields import ALPHA_POLICIES, COLOR_POLICIES, RESIZE_POLICIES, clip

__all__ = [
    "ALPHA_POLICIES",
    "ALPHA_RULES",
    "DECODER_VERSION",
    "FORMATS",
    "IMAGE_FILE_LIMIT",
    "MAX_PIXELS",
    "DecodedImage",
    "ImageError",
    "alpha_note",
    "decode_image",
    "decode_many",
    "read_image_file",
]

# Bump whenever the same file may decode to other pixels: it is part of the cache key.
# 1: torchvision.io; 2: Pillow, with the alpha policy and 16-bit high bytes.
DECODER_VERSION = 2
# The largest image file read, in bytes: far above any real image, far below a memory's worth.
IMAGE_FILE_LIMIT = 64 << 20
# The most pixels an image may have (Pillow's own bomb limit): a 9,000 x 9,000 photo fits.
MAX_PIXELS = 89_478_485
# What Pillow is allowed to read: torchvision.io's formats, as before.
FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
FORMAT_WORDS = "a PNG, JPEG, GIF or WebP image"
# What a transparent image's alpha became, in the words notes use (see ``decode_image``).
ALPHA_RULES = {
    "alpha-as-grey": "read from their alpha (uniform colour)",
    "over-black": "composited over black",
    "over-white": "composited over white",
    "ignore": "with their alpha ignored",
}


class ImageError(ValueError):
    """Why an image file cannot be the model's input.

    ``what`` is a predicate for the file's name ("is not a PNG, JPEG, GIF or WebP image");
    ``setting`` is the policy that refused it (``"color"``, ``"resize"``), or "" when the
    file itself is bad. ``str()`` is ``what``.
    """

    def __init__(self, what: str, setting: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.setting = setting


@dataclass(frozen=True)
class DecodedImage:
    """One image as the model takes it, and what was done to get there."""

    pixels: np.ndarray  # uint8, height x width (the shape asked for); x 3 with color="rgb"
    colour: bool  # it had colour, turned into luminance (never with color="rgb")
    reduced: bool  # it had 16-bit samples, reduced to 8 bits
    alpha_rule: str | None  # a key of ALPHA_RULES, or None: no transparent pixel
    original_size: tuple[int, int]  # (width, height) as decoded, after EXIF orientation


def read_image_file(path: str | Path) -> bytes:
    """The bytes of the image file ``path``: a regular file (a symlink to one is followed)
    of at most ``IMAGE_FILE_LIMIT`` bytes.

    Raises ``OSError``: ``FileNotFoundError``, ``files.UnsafeFileError`` for a FIFO, a
    device, a folder or a file over the limit (never blocking, never reading one in full).
    """
    return files.read_bytes(path, IMAGE_FILE_LIMIT, follow_symlinks=True)


def decode_image(
    source: str | Path | bytes,
    *,
    shape: tuple[int, int] = (28, 28),
    resize: str = "resize",
    color: str = "grayscale",
    alpha: str = "auto",
) -> DecodedImage:
    """Decode one image file (its path, or its bytes) into the model's uint8 input.

    ``shape`` is (height, width) in pixels. ``resize`` ("resize", "pad" or "reject") says
    what becomes of another size: resized with antialiased bilinear, centred on black and
    cropped, or refused. ``color`` ("grayscale", "reject" or "rgb") does the same for colour:
    its luminance, ``(299 R + 587 G + 114 B) / 1000`` rounded, or refused; an image whose
    channels are equal is grey, not colour. With "rgb" colour is kept: every image comes
    back height x width x 3 (R, G, B), a grey one with its value in all three. ``alpha``
    ("auto", "over-black", "over-white", "ignore") says what transparency means: with
    "auto", an image whose colour is the same at every pixel while its alpha varies (a
    silhouette) takes its alpha as the grey value, and any other is composited over black,
    Fashion-MNIST's background.

    Returns a ``DecodedImage`` whose ``pixels`` are uint8 height x width (height x width
    x 3 with ``color="rgb"``). Raises
    ``ImageError`` (a ``ValueError``) saying what is wrong: unreadable, empty, not one of
    ``FORMATS``, damaged, an animation, over ``MAX_PIXELS``, or refused by a policy.
    """
    _check_policies(shape, resize, color, alpha)
    # Pillow warns about odd files (a palette's transparency, a large image, bad EXIF) on
    # the warnings channel, which ends on stderr: none of it is the user's business here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _decode(source, shape, resize, color, alpha)


def decode_many(
    sources: Iterable[str | Path | bytes],
    *,
    shape: tuple[int, int] = (28, 28),
    resize: str = "resize",
    color: str = "grayscale",
    alpha: str = "auto",
) -> Iterator[DecodedImage | ImageError]:
    """``decode_image`` of each of ``sources`` in turn, with the same options: each
    image's ``DecodedImage``, or the ``ImageError`` that refused it (yielded, not raised).
    The same decode, with the per-call set-up (checking the policies, silencing Pillow's
    warnings) done once, for datasets of many small images."""
    _check_policies(shape, resize, color, alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for source in sources:
            try:
                yield _decode(source, shape, resize, color, alpha)
            except ImageError as exc:
                yield exc


def _decode(
    source: str | Path | bytes, shape: tuple[int, int], resize: str, color: str, alpha: str
) -> DecodedImage:
    """``decode_image``'s work, its options checked and warnings silenced by the caller."""
    data = source if isinstance(source, bytes) else _read(source)
    if not data:
        raise ImageError("is an empty file")
    rgb, grey, alpha_plane, reduced, size = _open(data)
    pixels, colour, rule = _flatten(rgb, grey, alpha_plane, alpha, keep_colour=color == "rgb")
    if colour and color == "reject":
        raise ImageError("is in colour", "color")
    if color == "rgb" and pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    height, width = shape
    if pixels.shape[:2] != (height, width):
        if resize == "reject":
            raise ImageError(
                f"is {pixels.shape[1]}x{pixels.shape[0]}, expected {width}x{height}", "resize"
            )
        pixels = _resize(pixels, shape) if resize == "resize" else _pad_or_crop(pixels, shape)
    return DecodedImage(pixels, colour, reduced, rule, size)


def _check_policies(shape: tuple[int, int], resize: str, color: str, alpha: str) -> None:
    # Programming errors, not the user's: the policies were validated with the config.
    if resize not in RESIZE_POLICIES or color not in COLOR_POLICIES or alpha not in ALPHA_POLICIES:
        raise ValueError(f"unknown policy: resize={resize!r}, color={color!r}, alpha={alpha!r}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (height, width) of at least 1 pixel, not {shape!r}")


def _read(path: str | Path) -> bytes:
    try:
        return read_image_file(path)
    except OSError as exc:
        raise ImageError(f"cannot be read ({exc.strerror or exc})") from None


def _open(
    data: bytes,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, bool, tuple[int, int]]:
    """Pillow's decode of ``data``: (rgb H x W x 3 or None, grey H x W or None, alpha H x W
    or None, whether samples were 16-bit, (width, height)); exactly one of rgb and grey."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    # Warnings are silenced by the caller (decode_image, decode_many).
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise ImageError(_unidentified(data)) from None
    except Image.DecompressionBombError:
        raise ImageError(f"is too large (over {MAX_PIXELS:,} pixels)") from None
    except Exception as exc:  # a damaged header: Pillow raises many kinds
        raise ImageError(f"cannot be decoded ({_reason(exc)})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(f"is too large ({width}x{height}, over {MAX_PIXELS:,} pixels)")
    frames = int(getattr(image, "n_frames", 1))
    if frames > 1:
        raise ImageError(f"is an animation of {frames} frames, expected one image")
    reduced = image.mode in ("I;16", "I;16B", "I;16L", "I") or any(
        ";16" in str(tile.args) for tile in image.tile
    )
    try:
        image.load()
        # Photos often store their rotation in EXIF (or XMP) rather than in the pixels;
        # an image with neither (most PNGs) skips the look, which costs a third of a
        # small PNG's decode.
        upright: Image.Image = image
        if any(key in image.info for key in _ORIENTATION_KEYS):
            upright = ImageOps.exif_transpose(image)
        return (*_planes(upright), reduced, upright.size)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"cannot be decoded ({_reason(exc)})") from None


# Where Pillow finds an image's orientation (``Image.getexif``): EXIF (also as ImageMagick's
# PNG text chunk), and XMP's tiff:Orientation.
_ORIENTATION_KEYS = ("exif", "Raw profile type exif", "xmp", "XML:com.adobe.xmp")


def _planes(image: object) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(rgb, grey, alpha) of a loaded Pillow image, 8 bits per sample."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    mode = image.mode
    if mode.startswith("I"):  # 16-bit grey (I;16*), or 32-bit integers holding 16 bits
        wide = np.asarray(image).astype(np.int64)
        return None, (np.clip(wide, 0, 65535) >> 8).astype(np.uint8), None
    if "transparency" in image.info and mode in ("1", "L", "P", "RGB"):
        image = image.convert("RGBA" if mode in ("P", "RGB") else "LA")
        mode = image.mode
    if mode == "L":
        return None, np.asarray(image), None
    if mode == "1":
        return None, np.asarray(image.convert("L")), None
    if mode in ("LA", "La"):
        la = np.asarray(image.convert("LA"))
        return None, la[..., 0].copy(), la[..., 1].copy()
    if mode in ("RGBA", "RGBa", "PA"):
        rgba = np.asarray(image.convert("RGBA"))
        return rgba[..., :3].copy(), None, rgba[..., 3].copy()
    return np.asarray(image.convert("RGB")), None, None


# The first bytes of each format Pillow is allowed to read.
_MAGIC = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "GIF": (b"GIF87a", b"GIF89a"),
    "WEBP": (b"RIFF",),
}
_WORDS = {"PNG": "PNG", "JPEG": "JPEG", "GIF": "GIF", "WEBP": "WebP"}


def _unidentified(data: bytes) -> str:
    """Why Pillow could not open ``data``: not an image of ours at all, or one of ours
    that is damaged (then Pillow's own reason, which ``Image.open`` does not pass on)."""
    from PIL import Image

    for fmt, magics in _MAGIC.items():
        if data.startswith(magics) and (fmt != "WEBP" or data[8:12] == b"WEBP"):
            try:
                Image.OPEN[fmt][0](io.BytesIO(data), "")
            except Exception as exc:
                reason = re.sub(r"^broken \w+ file \((.*)\)$", r"\1", _reason(exc))
                return f"is a damaged {_WORDS[fmt]} file ({reason})"
            break
    return f"is not {FORMAT_WORDS}"


def _reason(exc: BaseException) -> str:
    """A library's message, one line, with no object addresses or source paths in it."""
    text = re.sub(r"<[^<>]* at 0x[0-9a-f]+>", "the data", str(exc) or type(exc).__name__)
    text = re.sub(r"\S+\.(?:c|cc|cpp|h|py):\d+\S*", "", text)
    return clip(text, 120)


def _flatten(
    rgb: np.ndarray | None,
    grey: np.ndarray | None,
    alpha_plane: np.ndarray | None,
    alpha: str,
    *,
    keep_colour: bool = False,
) -> tuple[np.ndarray, bool, str | None]:
    """(grey H x W uint8, whether it had colour, the alpha rule applied or None); with
    ``keep_colour`` an RGB image stays H x W x 3 (and "had colour" is False)."""
    colour_planes = rgb if rgb is not None else grey
    assert colour_planes is not None
    rule = None
    if alpha_plane is not None and int(alpha_plane.min()) < 255:
        rule = alpha
        if alpha == "auto":
            flat = colour_planes.reshape(-1, rgb.shape[2] if rgb is not None else 1)
            uniform = bool((flat == flat[0]).all())
            varies = int(alpha_plane.max()) != int(alpha_plane.min())
            rule = "alpha-as-grey" if uniform and varies else "over-black"
        if rule == "alpha-as-grey":
            return alpha_plane, False, rule
        if rule in ("over-black", "over-white"):
            a = alpha_plane.astype(np.int32)
            if rgb is not None:
                a = a[..., None]
            c = colour_planes.astype(np.int32) * a
            if rule == "over-white":
                c += 255 * (255 - a)
            composited = ((c + 127) // 255).astype(np.uint8)
            if rgb is not None:
                rgb = composited
            else:
                grey = composited
    if rgb is None:
        assert grey is not None
        return grey, False, rule
    if keep_colour:
        return np.ascontiguousarray(rgb), False, rule
    return (*_to_grey(rgb), rule)


def _to_grey(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """The luminance of an H x W x 3 uint8 image, and whether it had any colour at all."""
    red, green, blue = (rgb[..., c] for c in range(3))
    if np.array_equal(red, green) and np.array_equal(green, blue):
        return np.ascontiguousarray(red), False
    wide = rgb.astype(np.int32)
    # ITU-R BT.601 weights, as PIL's "L" mode and torchvision's rgb_to_grayscale use.
    grey = (wide[..., 0] * 299 + wide[..., 1] * 587 + wide[..., 2] * 114 + 500) // 1000
    return grey.astype(np.uint8), True


def _resize(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """H x W (grey) or H x W x 3 (RGB) uint8 pixels resized to ``shape`` (height, width)."""
    from PIL import Image

    # Pillow's bilinear widens its filter when shrinking, so fine patterns do not alias.
    resized = Image.fromarray(pixels).resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized)


def _pad_or_crop(grey: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Centre the image (H x W, or H x W x 3) on a black canvas of ``shape``, cropping
    what does not fit."""
    out = np.zeros((*shape, *grey.shape[2:]), dtype=np.uint8)
    height, width = grey.shape[:2]
    src_y, dst_y = max(0, (height - shape[0]) // 2), max(0, (shape[0] - height) // 2)
    src_x, dst_x = max(0, (width - shape[1]) // 2), max(0, (shape[1] - width) // 2)
    h, w = min(height, shape[0]), min(width, shape[1])
    out[dst_y : dst_y + h, dst_x : dst_x + w] = grey[src_y : src_y + h, src_x : src_x + w]
    return out


def alpha_note(counts: dict[str, int], policy: str) -> str | None:
    """One note for the images each alpha rule touched (``counts`` by ``ALPHA_RULES`` key),
    e.g. "3 images with transparency (alpha=auto): 2 read from their alpha (uniform colour),
    1 composited over black"; None when no image had a transparent pixel."""
    total = sum(counts.values())
    if not total:
        return None
    parts = [f"{counts[rule]} {words}" for rule, words in ALPHA_RULES.items() if counts.get(rule)]
    noun = "image" if total == 1 else "images"
    return f"{total} {noun} with transparency (alpha={policy}): " + ", ".join(parts)
