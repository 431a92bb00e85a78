"""MSMT17 (V1 and V2 releases): the list files name every image and its label; the folders are
only where the files lie. Train = list_train + list_val (the published 32,621 images).

A list line is ``<path relative to the image folder> <label>``; labels count from 0 in each of
the train and test label spaces, so a manifest pid is label + 1 (pid 0 means distractor in the
manifests, docs/architecture.md §3). The camera is the third field of the file name
(``0000_000_01_0303morning_0015_0.jpg`` -> camera 01 -> camid 0)."""

from __future__ import annotations

import re
from pathlib import Path

from ..foundation.errors import DatasetError
from .manifests import DatasetListing, SplitListing, folders_within, listing_frame

LIST_FILES = {"train": ("list_train.txt", "list_val.txt"), "query": ("list_query.txt",), "gallery": ("list_gallery.txt",)}
# image folders of each release: (train, test)
RELEASE_FOLDERS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}
NAME_RE = re.compile(r"^\d+_\d+_(?P<cam>\d{2})_[^/]*\.(jpg|jpeg|png)$", re.IGNORECASE)


def find_root(folder) -> tuple[Path, str]:
    """(folder holding the list files and image folders, release 'V1' or 'V2')."""
    lists = [name for names in LIST_FILES.values() for name in names]
    for c in folders_within(folder, 2):
        if all((c / name).is_file() for name in lists):
            for release, (train, test) in RELEASE_FOLDERS.items():
                if (c / train).is_dir() and (c / test).is_dir():
                    return c, release
    raise DatasetError(
        f"{folder}: not an MSMT17 folder; expected {', '.join(lists)} beside image folders train/ and test/ (V1) "
        "or mask_train_v2/ and mask_test_v2/ (V2), here or up to two levels down"
    )


def read_list(list_path: Path, image_dir: Path) -> list[tuple[Path, int, int]]:
    """Rows (image path, pid = label + 1, 0-based camera) of one list file; each line checked."""
    rows = []
    with open(list_path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{list_path}, line {lineno}"
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise DatasetError(f"{where}: expected '<image path> <integer label>', got {line.strip()!r}")
            rel, label = parts[0], int(parts[1])
            if label < 0:
                raise DatasetError(f"{where}: label must be >= 0, got {label}")
            m = NAME_RE.match(Path(rel).name)
            if m is None:
                raise DatasetError(f"{where}: {Path(rel).name!r} is not an MSMT17 image name; expected PPPP_NNN_CC_<time>_<frame>_<n>.jpg")
            cam = int(m["cam"])
            if cam < 1:
                raise DatasetError(f"{where}: camera field must start at 01, got {m['cam']}")
            path = image_dir / rel
            if not path.is_file():
                raise DatasetError(f"{where}: names {rel}, which is not in {image_dir}")
            rows.append((path, label + 1, cam - 1))
    return rows


def list_dataset(folder) -> DatasetListing:
    root, release = find_root(folder)
    train_dir, test_dir = (root / name for name in RELEASE_FOLDERS[release])
    splits = {}
    for split, names in LIST_FILES.items():
        image_dir = train_dir if split == "train" else test_dir
        rows = [row for name in names for row in read_list(root / name, image_dir)]
        splits[split] = SplitListing(listing_frame(rows), where=" + ".join(str(root / n) for n in names))
    seen: dict[Path, str] = {}
    for split, listing in splits.items():
        for p in listing.frame["path"]:
            if p in seen:
                raise DatasetError(f"{p}: listed twice ({seen[p]} and {split}); each image belongs to one split")
            seen[p] = split
    return DatasetListing("msmt17", root, splits, {"release": release})
