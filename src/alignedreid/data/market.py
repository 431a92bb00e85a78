"""Scan and validate a Market-1501-layout folder and write the manifests (docs/architecture.md §3)."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image
from tqdm import tqdm

from ..errors import DatasetError
from ..io_utils import atomic_path, display_path, write_json
from .names import DISTRACTOR_PID, JUNK_PID, parse_name

log = logging.getLogger(__name__)

SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
# Published counts of Market-1501 (files per folder; train identities).
MARKET1501_COUNTS = {"train": 12936, "train_ids": 751, "query": 3368, "gallery": 19732}
MANIFEST_COLUMNS = ["path", "pid", "camid"]


@dataclass
class SplitScan:
    split: str
    frame: pd.DataFrame
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def find_market_root(folder: str | os.PathLike) -> Path:
    """Return the folder holding the three Market-1501 split folders: ``folder`` itself or a
    sub-folder up to two levels down (the original zip wraps them in ``Market-1501-v15.09.15/``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: dataset folder not found")
    candidates = [folder] + sorted(p for p in folder.glob("*") if p.is_dir()) + sorted(p for p in folder.glob("*/*") if p.is_dir())
    for c in candidates:
        if all((c / sub).is_dir() for sub in SPLIT_FOLDERS.values()):
            return c
    missing = [sub for sub in SPLIT_FOLDERS.values() if not (folder / sub).is_dir()]
    raise DatasetError(
        f"{folder}: not a Market-1501 folder; expected sub-folders {', '.join(SPLIT_FOLDERS.values())} "
        f"(here or one/two levels down), missing: {', '.join(missing)}"
    )


def check_image(path: Path) -> str | None:
    """Decode an image fully; return None if fine, else the reason it is unusable."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.width < 1 or im.height < 1:
                return "empty image"
    except Exception as e:  # Pillow raises many types for bad files
        return f"{type(e).__name__}: {e}"
    return None


def scan_split(root: Path, split: str, skip_corrupt: bool, workers: int = 4) -> SplitScan:
    folder = root / SPLIT_FOLDERS[split]
    rows, ignored = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_file():
            continue
        if not entry.name.lower().endswith(".jpg"):
            ignored.append(entry.name)  # e.g. Thumbs.db in the original release
            continue
        try:
            n = parse_name(entry.name)
        except DatasetError as e:
            raise DatasetError(f"{folder / entry.name}: {e}") from None
        if split != "gallery" and n.pid in (JUNK_PID, DISTRACTOR_PID):
            kind = "junk (-1)" if n.pid == JUNK_PID else "distractor (0000)"
            raise DatasetError(f"{folder / entry.name}: {kind} images belong only in {SPLIT_FOLDERS['gallery']}, not in {SPLIT_FOLDERS[split]}")
        rows.append((Path(entry.path), n.pid, n.camid))
    if not rows:
        raise DatasetError(f"{folder}: no Market-1501 .jpg images found")

    paths = [r[0] for r in rows]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = list(tqdm(pool.map(check_image, paths), total=len(paths), desc=f"verify {split}", unit="img", mininterval=2))
    corrupt = [(str(p), why) for p, why in zip(paths, problems) if why is not None]
    if corrupt and not skip_corrupt:
        listing = "\n".join(f"  {p}: {why}" for p, why in corrupt[:20])
        more = f"\n  ... and {len(corrupt) - 20} more" if len(corrupt) > 20 else ""
        raise DatasetError(
            f"{len(corrupt)} unreadable image(s) in {folder}:\n{listing}{more}\n"
            "Fix or remove them, or set dataset.skip_corrupt: true to leave them out of the manifests."
        )
    bad = {p for p, _ in corrupt}
    frame = pd.DataFrame([(display_path(p), pid, cam) for p, pid, cam in rows if str(p) not in bad], columns=MANIFEST_COLUMNS).astype(
        {"pid": "int64", "camid": "int64"}
    )
    return SplitScan(split=split, frame=frame, corrupt=corrupt, ignored=ignored)


def check_counts(scans: dict[str, SplitScan], expected: dict[str, int], strict: bool) -> list[str]:
    """Compare file counts (corrupt files included, so a skipped image is not also a count error)
    with ``expected``; raise in strict mode, else return the mismatches as warnings."""
    actual = {s: len(scan.frame) + len(scan.corrupt) for s, scan in scans.items()}
    actual["train_ids"] = int(scans["train"].frame["pid"].nunique())
    labels = {"train": "train images", "train_ids": "train identities", "query": "query images", "gallery": "gallery images"}
    mismatches = [f"{labels[k]}: expected {v}, found {actual[k]}" for k, v in expected.items() if k in actual and actual[k] != v]
    if mismatches and strict:
        raise DatasetError(
            "dataset counts differ from the expected ones:\n  "
            + "\n  ".join(mismatches)
            + "\nSet dataset.strict_counts: false to accept a custom subset (mismatches become warnings)."
        )
    for m in mismatches:
        log.warning("count mismatch: %s", m)
    return mismatches


def summarize(scans: dict[str, SplitScan], warnings: list[str], root: Path, source: str) -> dict:
    out = {"source": source, "root": display_path(root), "count_warnings": warnings, "splits": {}}
    for split, scan in scans.items():
        f = scan.frame
        out["splits"][split] = {
            "images": int(len(f)),
            "ids": int(f.loc[f.pid > 0, "pid"].nunique()),
            "cameras": sorted(int(c) for c in f["camid"].unique()),
            "junk": int((f.pid == JUNK_PID).sum()),
            "distractors": int((f.pid == DISTRACTOR_PID).sum()),
            "corrupt_skipped": [p for p, _ in scan.corrupt],
            "ignored_files": scan.ignored,
        }
    return out


def write_manifests(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    expected: dict[str, int] | None,
    strict_counts: bool = True,
    skip_corrupt: bool = False,
    source: str = "market1501",
    workers: int = 4,
) -> dict:
    """Scan ``root`` (a Market-layout folder), validate it and write ``{train,query,gallery}.csv``
    and ``summary.json`` into ``out_dir``. Every check runs before any file is written."""
    root = find_market_root(root)
    scans = {split: scan_split(root, split, skip_corrupt, workers) for split in SPLIT_FOLDERS}
    for scan in scans.values():
        for p, why in scan.corrupt:
            log.warning("skipped corrupt image %s (%s)", p, why)
        if scan.ignored:
            log.info("%s: ignored %d non-jpg file(s): %s", scan.split, len(scan.ignored), ", ".join(scan.ignored[:5]))
    warnings = check_counts(scans, expected or {}, strict_counts)
    summary = summarize(scans, warnings, root, source)
    out_dir = Path(out_dir)
    for split, scan in scans.items():
        with atomic_path(out_dir / f"{split}.csv") as tmp:
            scan.frame.to_csv(tmp, index=False)
    write_json(out_dir / "summary.json", summary)
    log.info(
        "manifests: %s",
        ", ".join(f"{s} {v['images']} images / {v['ids']} ids" for s, v in summary["splits"].items()),
    )
    return summary


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest and check its columns (path, pid, camid)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: manifest not found")
    df = pd.read_csv(path)
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}: manifest lacks column(s) {missing}; expected at least {MANIFEST_COLUMNS}")
    return df
