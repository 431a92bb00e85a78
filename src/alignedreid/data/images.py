"""The pipeline's one image contract: what an image is, for every stage that reads pixels (dataset
verification, training, calibration, ``preprocess``, search listing, thumbnails).

- :func:`why_unusable` says why a path is not an image the pipeline uses (or None): it looks at the
  directory entry first (dangling or looping symbolic links, links to folders, FIFOs, sockets and
  devices are never opened), then the header (a pixel bound against decompression bombs, degenerate
  sizes), then decodes the normalised pixels.
- :func:`model_bytes` gives the encoded bytes MindSpore's ``vision.Decode`` reads. JPEG (RGB or grey,
  no EXIF rotation) and 8-bit RGB or grey PNG pass as they are, which MindSpore decodes as any viewer
  does. Everything else Pillow reads -- GIF and animated images (first frame), WebP, BMP, TIFF, ICO,
  16-bit PNG, palette and alpha images, CMYK JPEG, EXIF-rotated JPEG -- is normalised once, in memory,
  by :func:`to_rgb` into 8-bit RGB and handed over as PNG: the model sees exactly the pixels of that
  PNG, and nothing is written to disk (MindSpore's own fallback for formats it cannot read writes a
  copy of the image into the working folder).
- :func:`thumbnail_uri` decodes at reduced size (JPEG draft, the pixel bound) the same pixels.

docs/architecture.md §3, "Images".
"""

from __future__ import annotations

import base64
import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 25_000_000  # 5,000 x 5,000: far above any person crop; a bigger header is refused before decoding
MIN_SIDE = 8  # pixels: a narrower "image" is no crop of a person
MAX_ASPECT = 16  # longest side / shortest side
NATIVE = {"JPEG": {"RGB", "L"}, "PNG": {"RGB", "L"}}  # what MindSpore decodes as a viewer shows it
ORIENTATION = 0x0112  # EXIF tag


class UnusableImage(ValueError):
    """A path is not an image the pipeline uses; the message says why."""


def entry_problem(path) -> str | None:
    """Why the directory entry ``path`` cannot be opened as an image file, without opening it (None: a
    regular, non-empty file, possibly behind a symbolic link)."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return "dangling symbolic link"
        except OSError as e:
            return "symbolic link loop" if e.errno == 40 else f"symbolic link cannot be followed ({e.strerror})"
        if stat.S_ISDIR(st.st_mode):
            return "symbolic link to a folder (not followed)"
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}
    for test, kind in kinds.items():
        if test(st.st_mode):
            return f"not a regular file ({kind}; never opened)"
    if stat.S_ISDIR(st.st_mode):
        return "a folder"
    if st.st_size == 0:
        return "empty file"
    return None


def _open(source) -> Image.Image:
    """Open (header only) with the size checks; raises UnusableImage."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UnusableImage(f"decompression bomb refused ({e})") from e
    except UnidentifiedImageError as e:
        raise UnusableImage("not an image Pillow can read") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise UnusableImage(f"{type(e).__name__}: {e}") from e
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise UnusableImage(f"too large: {w}x{h} pixels (the bound is {MAX_PIXELS:,} pixels)")
    if min(w, h) < MIN_SIDE or max(w, h) > MAX_ASPECT * min(w, h):
        im.close()
        raise UnusableImage(f"degenerate size {w}x{h} (expected at least {MIN_SIDE} pixels a side and an aspect within 1:{MAX_ASPECT})")
    return im


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB pixels as a viewer shows them: EXIF orientation applied, the first frame of an
    animation, 16-bit and 32-bit grey scaled to 8 bits (not clipped), CMYK, palette and alpha converted
    (alpha dropped, the stored colours kept)."""
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    im = ImageOps.exif_transpose(im) or im
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.int64)
        top = 65535 if im.mode != "I" or a.max() > 255 else 255
        im = Image.fromarray(np.clip(a * 255 // top, 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        im = Image.fromarray(np.clip(a * (255 if a.max() <= 1 else 1), 0, 255).astype(np.uint8), "L")
    return im.convert("RGB")


def _is_native(im: Image.Image, head: bytes) -> bool:
    if im.format not in NATIVE or im.mode not in NATIVE[im.format] or getattr(im, "n_frames", 1) > 1:
        return False
    if im.format == "PNG":  # IHDR: bit depth (byte 24) 8, colour type (byte 25) grey or RGB
        return len(head) > 25 and head[24] == 8 and head[25] in (0, 2)
    return im.getexif().get(ORIENTATION, 1) == 1


def model_bytes(path) -> bytes:
    """The encoded bytes of ``path`` that MindSpore's Decode reads (see the module doc); raises
    UnusableImage naming why it is not an image."""
    problem = entry_problem(path)
    if problem:
        raise UnusableImage(f"{path}: {problem}")
    data = Path(path).read_bytes()
    return normalised_bytes(data, path)


def normalised_bytes(data: bytes, name="image") -> bytes:
    """``data`` (an encoded image) as bytes MindSpore decodes to the pixels a viewer shows."""
    try:
        with _open(io.BytesIO(data)) as im:
            if _is_native(im, data[:32]):
                return data
            rgb = to_rgb(im)
    except UnusableImage as e:
        raise UnusableImage(f"{name}: {e}") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise UnusableImage(f"{name}: {type(e).__name__}: {e}") from None
    buf = io.BytesIO()
    rgb.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def why_unusable(path) -> str | None:
    """None when ``path`` is an image the pipeline uses, else why not (one line)."""
    problem = entry_problem(path)
    if problem:
        return problem
    try:
        with _open(path) as im:
            to_rgb(im).load()
    except UnusableImage as e:
        return str(e)
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated or corrupt data
        return f"{type(e).__name__}: {e}"
    return None


def thumbnail_uri(path, height: int = 96) -> str:
    """A JPEG data URI ``height`` pixels high of the pixels the model sees, decoded at reduced size
    (JPEG draft mode, the pixel bound); "" when the file is no usable image."""
    if entry_problem(path):
        return ""
    try:
        with _open(path) as im:
            width = max(1, round(im.width * height / im.height))
            if im.format == "JPEG":
                im.draft("RGB", (width, height))
            rgb = to_rgb(im)
            rgb.thumbnail((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
            buf = io.BytesIO()
            rgb.save(buf, format="JPEG", quality=80)
    except (UnusableImage, OSError, ValueError, SyntaxError, EOFError):
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
