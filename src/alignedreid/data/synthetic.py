"""Deterministic synthetic dataset in the layout of any supported source, for demos and tests.

Each identity is a drawn pedestrian whose look is fixed by the identity (colours of hair, upper
and lower body, a texture on the upper body, a bag on one side); each camera changes how it
looks (illumination and colour cast, background, scale and position, blur, occlusion). So an
identity is learnable across cameras, and the task is not solvable by background alone.
The output goes through the same reader and checks as the real release of its layout
(synthetic_layouts.py says where each layout puts the files).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..foundation.io_utils import atomic_directory
from . import sources
from .names import DISTRACTOR_PID, JUNK_PID
from .spec import SyntheticSpec

# --------------------------------------------------------------------------- appearance
# A small palette: identities share colours, so only the combination (and texture, bag, build)
# tells them apart, as with real clothing.
PALETTE = np.array(
    [
        [200, 30, 30],
        [30, 60, 170],
        [235, 235, 235],
        [25, 25, 25],
        [60, 140, 60],
        [220, 200, 60],
        [130, 80, 40],
        [120, 120, 130],
        [190, 110, 170],
        [40, 160, 180],
    ]
)


def _identity(rng: np.random.Generator) -> dict:
    def colour():
        return PALETTE[rng.integers(0, len(PALETTE))] + rng.integers(-15, 16, 3)

    return {
        "hair": PALETTE[rng.integers(0, len(PALETTE))] // 2,
        "skin": np.array([rng.integers(120, 240), rng.integers(90, 190), rng.integers(60, 160)]),
        "upper": colour(),
        "upper2": colour(),
        "lower": colour(),
        "shoes": rng.integers(0, 120, 3),
        "texture": int(rng.integers(0, 4)),  # plain, horizontal stripes, vertical stripes, checks
        "period": int(rng.integers(3, 10)),
        "bag": int(rng.integers(0, 3)),  # none, left, right
        "bag_colour": colour(),
        "build": float(rng.uniform(0.8, 1.15)),
    }


def _camera(seed: int, cam: int) -> dict:
    rng = np.random.default_rng([seed, 7919, cam])
    return {
        "gain": float(rng.uniform(0.6, 1.35)),
        "cast": rng.uniform(-35, 35, 3),
        "background": rng.integers(40, 220, 3),
        "bg_noise": float(rng.uniform(5, 30)),
        "scale": float(rng.uniform(0.8, 1.0)),
        "blur": float(rng.uniform(0.0, 1.2)),
    }


def _texture(h: int, w: int, ident: dict) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    p = ident["period"]
    if ident["texture"] == 1:
        mask = (yy // p) % 2 == 0
    elif ident["texture"] == 2:
        mask = (xx // p) % 2 == 0
    elif ident["texture"] == 3:
        mask = ((yy // p) + (xx // p)) % 2 == 0
    else:
        mask = np.ones((h, w), bool)
    out = np.where(mask[..., None], ident["upper"], ident["upper2"])
    return out.astype(np.uint8)


def render_person(ident: dict, cam: dict, rng: np.random.Generator, width: int, height: int, junk: bool = False) -> Image.Image:
    """Draw one pedestrian image of ``ident`` as seen by camera ``cam``."""
    bg = np.clip(cam["background"] + rng.normal(0, cam["bg_noise"], (height, width, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(bg)
    draw = ImageDraw.Draw(img)
    s = cam["scale"] * rng.uniform(0.9, 1.05)
    ph = height * s
    pw = width * 0.55 * s * ident["build"]
    cx = width / 2 + rng.uniform(-0.12, 0.12) * width
    top = (height - ph) * rng.uniform(0.2, 0.8)
    if junk:  # a fragment of a person, mostly background: a bad detection
        top += ph * rng.uniform(0.45, 0.7)
        cx += rng.choice([-1, 1]) * width * rng.uniform(0.25, 0.45)

    def box(y0, y1, x0, x1):
        return [cx + x0 * pw, top + y0 * ph, cx + x1 * pw, top + y1 * ph]

    draw.ellipse(box(0.02, 0.16, -0.16, 0.16), fill=tuple(int(v) for v in ident["skin"]))
    draw.pieslice(box(0.0, 0.14, -0.18, 0.18), 180, 360, fill=tuple(int(v) for v in ident["hair"]))
    ux0, uy0, ux1, uy1 = [int(round(v)) for v in box(0.16, 0.55, -0.5, 0.5)]
    uw, uh = max(ux1 - ux0, 1), max(uy1 - uy0, 1)
    img.paste(Image.fromarray(_texture(uh, uw, ident)), (ux0, uy0))
    draw.rectangle(box(0.55, 0.93, -0.42, -0.03), fill=tuple(int(v) for v in ident["lower"]))
    draw.rectangle(box(0.55, 0.93, 0.03, 0.42), fill=tuple(int(v) for v in ident["lower"]))
    draw.rectangle(box(0.93, 0.99, -0.45, -0.03), fill=tuple(int(v) for v in ident["shoes"]))
    draw.rectangle(box(0.93, 0.99, 0.03, 0.45), fill=tuple(int(v) for v in ident["shoes"]))
    if ident["bag"]:
        side = -1 if ident["bag"] == 1 else 1
        x0, x1 = (0.45, 0.8) if side > 0 else (-0.8, -0.45)
        draw.rectangle(box(0.3, 0.58, x0, x1), fill=tuple(int(v) for v in ident["bag_colour"]))
    if rng.random() < 0.25:  # partial occlusion by a passer-by / pole
        ox = rng.uniform(0, width * 0.8)
        draw.rectangle([ox, 0, ox + rng.uniform(4, width * 0.35), height], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    arr = np.asarray(img).astype(np.float32)
    arr = arr * cam["gain"] * rng.uniform(0.9, 1.1) + cam["cast"]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    radius = cam["blur"] + rng.uniform(0, 0.4)
    if radius > 0.2:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    return img


# --------------------------------------------------------------------------- layout
def _spread(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` counts that differ by at most one (larger ones first)."""
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def _per_identity(spec: SyntheticSpec) -> dict[int, tuple[int, int]]:
    """pid -> (queries, images in all) for every identity (train identities have no queries)."""
    train, query, gallery = spec.totals()
    if spec.train_images is None and spec.query_images is None and spec.gallery_images is None:
        counts = {pid: (0, spec.images_per_id) for pid in range(1, spec.train_ids + 1)}
        counts.update({spec.train_ids + i + 1: (spec.queries_per_id, spec.images_per_id) for i in range(spec.test_ids)})
        return counts
    counts = {pid + 1: (0, n) for pid, n in enumerate(_spread(train, spec.train_ids))}
    for i, (q, g) in enumerate(zip(_spread(query, spec.test_ids), _spread(gallery, spec.test_ids)[::-1])):
        counts[spec.train_ids + i + 1] = (q, q + g)
    return counts


def plan_images(spec: SyntheticSpec) -> list[tuple[str, int, int, int, str]]:
    """List (split, pid, camera 1-based, frame, kind) for every image, in a fixed order."""
    plan = []
    for pid, (n_query, n_images) in _per_identity(spec).items():
        queries_left = {((pid + q) % spec.cameras) + 1 for q in range(n_query)}
        for k in range(n_images):
            cam = ((pid + k) % spec.cameras) + 1
            frame = (1000 * pid + 25 * k) % 1_000_000  # six digits in the file name; pid keeps names unique
            if pid > spec.train_ids and cam in queries_left:
                split = "query"
                queries_left.discard(cam)
            else:
                split = "train" if pid <= spec.train_ids else "gallery"
            plan.append((split, pid, cam, frame, "person"))
    for j in range(spec.distractors):
        plan.append(("gallery", DISTRACTOR_PID, (j % spec.cameras) + 1, 10 * j, "distractor"))
    for j in range(spec.junk):
        plan.append(("gallery", JUNK_PID, (j % spec.cameras) + 1, 10 * j + 5, "junk"))
    return plan


def generate(spec: SyntheticSpec, out_root: str | os.PathLike, options: dict | None = None) -> Path:
    """Write the dataset in ``spec.layout`` to ``out_root`` (replaced atomically); ``options`` is the
    dataset config section, for layouts with options (cuhk03.images: the labeled or detected
    folder). Same spec -> identical bytes."""
    out_root = Path(out_root)
    with atomic_directory(out_root) as tmp:
        writer = sources.get(spec.layout).writer(tmp, spec.train_ids + spec.test_ids, options)
        made: set[Path] = set()
        cams = {c: _camera(spec.seed, c) for c in range(1, spec.cameras + 1)}
        idents: dict[int, dict] = {}
        for split, pid, cam, frame, kind in plan_images(spec):
            rng = np.random.default_rng([spec.seed, pid + 2, cam, frame])
            if kind == "person":
                if pid not in idents:
                    idents[pid] = _identity(np.random.default_rng([spec.seed, 104729, pid]))
                ident = idents[pid]
            else:  # every distractor / junk box shows someone not in the id set
                ident = _identity(np.random.default_rng([spec.seed, 15485863, pid + 2, frame]))
            img = render_person(ident, cams[cam], rng, spec.width, spec.height, junk=(kind == "junk"))
            path = writer.path(split, pid, cam, frame, kind)
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            img.save(path, format=writer.image_format, quality=spec.jpeg_quality)
        writer.finish()
    return out_root
