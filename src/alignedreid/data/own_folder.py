"""A plain folder of the user's own crops: ``train/``, ``query/``, ``gallery/``, each holding one
sub-folder per identity; the camera comes from each file name through a regular expression with
a named group ``cam`` (config dataset.folder.camera_pattern, searched anywhere in the name).

Identities are folder names: train identities are numbered 1.. in sorted order, and the test
identities (query and gallery together, so the same name matches across them) likewise; the
manifests keep the folder name in an ``identity`` column. Cameras are numbered 0.. in sorted
order of the captured text (numerically when every value is a number), the same over all splits.
An identity only in the gallery is a distractor by nature; this layout has no junk."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..foundation.errors import DatasetError
from .manifests import MANIFEST_COLUMNS, DatasetListing, SplitListing, folders_within, listing_frame
from .spec import compile_pattern

SPLIT_FOLDERS = ("train", "query", "gallery")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def find_root(folder) -> Path:
    folder = Path(folder)
    for c in folders_within(folder, 1):
        if all((c / s).is_dir() for s in SPLIT_FOLDERS):
            return c
    missing = [s for s in SPLIT_FOLDERS if not (folder / s).is_dir()]
    raise DatasetError(
        f"{folder}: expected sub-folders train/, query/, gallery/ (one folder per identity inside each), missing: {', '.join(missing)}"
    )


def _walk(folder: Path, rx: re.Pattern) -> tuple[list[tuple[Path, str, str]], list[str]]:
    """(image path, identity, camera text) of every image under ``folder``/<identity>/."""
    items, ignored = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or (entry.is_file() and not entry.name.lower().endswith(IMAGE_EXTENSIONS)):
            ignored.append(entry.name)  # .DS_Store, Thumbs.db, notes: listed in the summary, not an error
            continue
        if entry.is_file():
            raise DatasetError(f"{entry.path}: images must lie in one sub-folder per identity ({folder}/<identity>/<image>), not in {folder} itself")
        for img in sorted(os.scandir(entry.path), key=lambda e: e.name):
            if not img.is_file() or not img.name.lower().endswith(IMAGE_EXTENSIONS):
                ignored.append(f"{entry.name}/{img.name}")
                continue
            m = rx.search(img.name)
            if m is None or m["cam"] is None:
                raise DatasetError(f"{img.path}: file name does not match dataset.folder.camera_pattern {rx.pattern!r} (the camera is read from it)")
            items.append((Path(img.path), entry.name, m["cam"]))
    return items, ignored


def _numbering(values) -> dict[str, int]:
    values = sorted(set(values))
    if all(v.isdigit() for v in values):
        values.sort(key=int)
    return {v: i for i, v in enumerate(values)}


def list_dataset(folder, camera_pattern: str) -> DatasetListing:
    rx = compile_pattern(camera_pattern)
    root = find_root(folder)
    walked = {s: _walk(root / s, rx) for s in SPLIT_FOLDERS}
    cameras = _numbering(cam for items, _ in walked.values() for _, _, cam in items)
    train_ids = _numbering(ident for _, ident, _ in walked["train"][0])
    test_ids = _numbering(ident for s in ("query", "gallery") for _, ident, _ in walked[s][0])
    splits = {}
    for split, (items, ignored) in walked.items():
        ids = train_ids if split == "train" else test_ids
        rows = [(p, ids[ident] + 1, cameras[cam], ident) for p, ident, cam in items]
        splits[split] = SplitListing(listing_frame(rows, MANIFEST_COLUMNS + ["identity"]), where=str(root / split), ignored=ignored)
    return DatasetListing("folder", root, splits, {"camera_ids": cameras})
