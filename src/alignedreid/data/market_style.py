"""Datasets laid out as Market-1501: three folders of images whose file names carry the person
id and the camera. Market-1501, DukeMTMC-reID and CUHK03-NP (labeled or detected) differ only in
folder names, file-name pattern and image type; only Market-1501's pattern admits junk (-1).
A person id 0000 is a distractor and -1 junk (docs/architecture.md §3), in the gallery only."""

from __future__ import annotations

import os
from pathlib import Path

from ..foundation.contracts import DISTRACTOR_PID, JUNK_PID
from ..foundation.errors import DatasetError
from .manifests import DatasetListing, SplitListing, folders_within, listing_frame
from .names import CUHK03, DUKEMTMC, MARKET1501, MARKET_FOLDERS, NamedLayout  # noqa: F401 (the layouts this module reads)


def find_root(folder, layout: NamedLayout, subfolder: str | None = None) -> Path:
    """The folder holding the three split folders: ``folder`` itself or a folder up to three
    levels down (release zips wrap them, e.g. ``Market-1501-v15.09.15/``, ``cuhk03-np/labeled/``).
    With ``subfolder`` (CUHK03-NP's labeled/detected) only a folder of that name counts."""
    folder = Path(folder)
    names = MARKET_FOLDERS.values()
    for c in folders_within(folder, 3):
        if (subfolder is None or c.name.lower() == subfolder) and all((c / sub).is_dir() for sub in names):
            return c
    what = f"a folder named {subfolder!r} holding " if subfolder else ""
    missing = [sub for sub in names if not (folder / sub).is_dir()]
    raise DatasetError(
        f"{folder}: not a {layout.display} folder; expected {what}sub-folders {', '.join(names)} "
        f"(here or up to three levels down), missing here: {', '.join(missing) or 'none, but the folder name does not fit'}"
    )


def parse(layout: NamedLayout, name: str) -> tuple[int, int]:
    """(pid, 0-based camera) from a file name; DatasetError if the name does not fit."""
    m = layout.pattern.match(name)
    if m is None:
        raise DatasetError(f"{name!r} is not a {layout.display} image name; expected {layout.expected_name}")
    cam = int(m["cam"])
    if cam < 1:
        raise DatasetError(f"{name!r}: camera index must start at c1, got c{cam}")
    return int(m["pid"]), cam - 1


def list_split(root: Path, layout: NamedLayout, split: str) -> SplitListing:
    folder = root / MARKET_FOLDERS[split]
    rows, ignored = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_file():
            continue
        if not entry.name.lower().endswith(layout.extension):
            ignored.append(entry.name)  # e.g. Thumbs.db in the Market-1501 release
            continue
        try:
            pid, cam = parse(layout, entry.name)
        except DatasetError as e:
            raise DatasetError(f"{folder / entry.name}: {e}") from None
        if pid in (JUNK_PID, DISTRACTOR_PID) and split != "gallery":
            kind = "junk (-1)" if pid == JUNK_PID else "distractor (0000)"
            raise DatasetError(f"{folder / entry.name}: {kind} images belong only in {MARKET_FOLDERS['gallery']}, not in {folder.name}")
        rows.append((Path(entry.path), pid, cam))
    return SplitListing(listing_frame(rows), where=str(folder), ignored=ignored)


def list_dataset(folder, layout: NamedLayout, subfolder: str | None = None) -> DatasetListing:
    root = find_root(folder, layout, subfolder)
    splits = {split: list_split(root, layout, split) for split in MARKET_FOLDERS}
    extra = {"cuhk03_images": subfolder} if subfolder else {}
    return DatasetListing(layout.source, root, splits, extra)
