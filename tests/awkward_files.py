"""A folder of the awkward files users' crops come as (test helper): every format and oddity of the
image contract, with, for each file the pipeline must search, a plain PNG of the pixels a viewer shows
(its reference), and for each entry it must skip, a word of the expected reason."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# entry name -> a word the skip reason must contain
SKIPPED = {
    "bomb.png": "decompression bomb",
    "wide.png": "degenerate",
    "notes.txt": "not an image",
    "truncated.jpg": "",
    "empty.jpg": "empty file",
    "dangling.jpg": "dangling",
    "loop.jpg": "loop",
    "fifo.jpg": "FIFO",
    "linked folder": "folder",
    ".DS_Store": "hidden",
    ".hidden folder": "hidden",
    "zz alias.jpg": "same file as",
}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(side: int = 20000) -> bytes:
    """A 1-bit PNG of side x side pixels, all black: ~50 KB on disk, side^2 pixels decoded."""
    raw = zlib.compress(bytes((side // 8 + 1) * side), 9)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b"")


def person(seed: int = 0, h: int = 128, w: int = 64) -> np.ndarray:
    """A smooth RGB crop (no JPEG-hostile noise): vertical bands of colour with a gradient."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for top in range(0, h, 16):
        img[top : top + 16] = rng.uniform(30, 220, 3)
    img += np.linspace(-20, 20, w)[None, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def make_corpus(folder: Path) -> dict[str, Path]:
    """Write the corpus into ``folder``; returns {searched entry name: its reference PNG} (references
    are written under ``folder``/../references)."""
    folder.mkdir(parents=True, exist_ok=True)
    refs_dir = folder.parent / "references"
    refs_dir.mkdir(exist_ok=True)
    refs: dict[str, Path] = {}

    def searched(name: str, shown: Image.Image):
        ref = refs_dir / f"{len(refs):02d}.png"
        shown.convert("RGB").save(ref)
        refs[name] = ref

    rgb = Image.fromarray(person(1))
    rgb.save(folder / "plain.jpg", quality=95)
    searched("plain.jpg", Image.open(folder / "plain.jpg"))

    frames = [Image.fromarray(person(2)).convert("P", palette=Image.Palette.ADAPTIVE), Image.fromarray(person(3)).convert("P")]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    searched("anim.gif", Image.open(folder / "anim.gif"))  # the first frame, as decoded

    Image.fromarray(person(4)).save(folder / "photo.webp", lossless=True)
    searched("photo.webp", Image.fromarray(person(4)))

    grey16 = (person(5)[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "deep16.png")  # mode I;16
    searched("deep16.png", Image.fromarray((grey16 // 257).astype(np.uint8), "L"))

    cmyk = Image.fromarray(person(6)).convert("CMYK")
    cmyk.save(folder / "cmyk.jpg", quality=95)
    searched("cmyk.jpg", Image.open(folder / "cmyk.jpg").convert("RGB"))

    # stored sideways (64 x 128 landscape) with EXIF orientation 6: viewers rotate it upright
    upright = Image.fromarray(person(7))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(folder / "rotated.jpg", quality=95, exif=exif.tobytes())
    searched("rotated.jpg", Image.open(folder / "rotated.jpg").transpose(Image.Transpose.ROTATE_270))

    Image.fromarray(person(8)).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    searched("palette.png", Image.open(folder / "palette.png"))
    rgba = Image.fromarray(np.dstack([person(9), np.full((128, 64), 200, np.uint8)]), "RGBA")
    rgba.save(folder / "alpha.png")
    searched("alpha.png", rgba.convert("RGB"))
    Image.fromarray(person(10)).save(folder / "bitmap.bmp")
    searched("bitmap.bmp", Image.fromarray(person(10)))
    Image.fromarray(person(11)).save(folder / "scan.tiff")
    searched("scan.tiff", Image.fromarray(person(11)))

    odd = os.fsdecode(b"caf\xe9 \xff.jpg")  # not UTF-8: kept exactly
    rgb.save(folder / odd, quality=95)
    searched(odd, Image.open(folder / odd))
    Image.fromarray(person(12)).save(folder / "two\nlines.png")
    searched("two\nlines.png", Image.fromarray(person(12)))

    (folder / "bomb.png").write_bytes(bomb_png())
    Image.new("RGB", (10000, 1)).save(folder / "wide.png")
    (folder / "notes.txt").write_text("no image")
    buf = io.BytesIO()
    Image.fromarray(person(13)).save(buf, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (folder / "empty.jpg").write_bytes(b"")
    os.symlink(folder / "missing.jpg", folder / "dangling.jpg")
    os.symlink(folder / "loop.jpg", folder / "loop.jpg")
    os.mkfifo(folder / "fifo.jpg")
    (folder.parent / "elsewhere").mkdir(exist_ok=True)
    Image.fromarray(person(14)).save(folder.parent / "elsewhere" / "x.jpg")
    os.symlink(folder.parent / "elsewhere", folder / "linked folder")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / ".hidden folder").mkdir()
    Image.fromarray(person(15)).save(folder / ".hidden folder" / "h.jpg")
    os.symlink(folder / "plain.jpg", folder / "zz alias.jpg")  # after plain.jpg in the walk: the duplicate
    return refs
