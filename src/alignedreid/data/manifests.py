"""From a dataset's listing (every image with its identity and camera, per split) to validated
manifests: each image decoded, counts checked, files written only when every check passed
(docs/architecture.md §3). The dataset sources (market_style, msmt17, own_folder) only list."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..foundation.contracts import DISTRACTOR_PID, JUNK_PID
from ..foundation.errors import DatasetError
from ..foundation.io_utils import atomic_path, display_path, write_json
from .images import why_unusable

log = logging.getLogger(__name__)
# Manifests are UTF-8; a file name that is not (bytes the file system holds, decoded by Python with
# surrogate escapes) is written and read back byte for byte instead of failing.
CSV_ERRORS = "surrogateescape"

SPLITS = ("train", "query", "gallery")
MANIFEST_COLUMNS = ["path", "pid", "camid"]
COUNT_LABELS = {"train": "train images", "train_ids": "train identities", "query": "query images", "gallery": "gallery images"}


@dataclass
class SplitListing:
    """One split as a source lists it: ``frame`` has columns path (absolute), pid, camid and
    possibly more (kept in the manifest); ``where`` names the folder or list file it came from."""

    frame: pd.DataFrame
    where: str
    ignored: list[str] = field(default_factory=list)


@dataclass
class DatasetListing:
    source: str
    root: Path
    splits: dict[str, SplitListing]
    extra: dict = field(default_factory=dict)  # source-specific facts for summary.json


@dataclass
class SplitScan:
    split: str
    frame: pd.DataFrame
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def folders_within(folder, depth: int) -> list[Path]:
    """``folder`` and every folder up to ``depth`` levels below it, in sorted order per level: where
    the sources look for a release's top folder (zips wrap it in one or more folders)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: dataset folder not found")
    return [folder] + [p for d in range(1, depth + 1) for p in sorted(folder.glob("/".join(["*"] * d))) if p.is_dir()]


def listing_frame(rows: list[tuple], columns=MANIFEST_COLUMNS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns).astype({"pid": "int64", "camid": "int64"})


def check_image(path) -> str | None:
    """Decode an image fully (the one image contract, data/images.py); None if fine, else why it is unusable."""
    return why_unusable(path)


def verify_split(split: str, listing: SplitListing, skip_corrupt: bool, workers: int) -> SplitScan:
    """Decode every image of the split; a corrupt one is an error naming it, or (skip_corrupt)
    a row left out and listed."""
    frame = listing.frame
    if frame.empty:
        raise DatasetError(f"{listing.where}: no {split} images found")
    paths = list(frame["path"])
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        problems = list(tqdm(pool.map(check_image, paths, chunksize=64), total=len(paths), desc=f"verify {split}", unit="img", mininterval=2))
    corrupt = [(str(p), why) for p, why in zip(paths, problems) if why is not None]
    if corrupt and not skip_corrupt:
        listing_text = "\n".join(f"  {p}: {why}" for p, why in corrupt[:20])
        more = f"\n  ... and {len(corrupt) - 20} more" if len(corrupt) > 20 else ""
        raise DatasetError(
            f"{len(corrupt)} unreadable image(s) in {listing.where}:\n{listing_text}{more}\n"
            "Fix or remove them, or set dataset.skip_corrupt: true to leave them out of the manifests."
        )
    keep = [why is None for why in problems]
    out = frame[keep].copy()
    out["path"] = [display_path(p) for p in out["path"]]
    return SplitScan(split=split, frame=out.reset_index(drop=True), corrupt=corrupt, ignored=listing.ignored)


def check_counts(scans: dict[str, SplitScan], expected: dict[str, int], strict: bool) -> list[str]:
    """Compare file counts (corrupt files included, so a skipped image is not also a count error)
    with ``expected``; raise in strict mode, else return the mismatches as warnings."""
    actual = {s: len(scan.frame) + len(scan.corrupt) for s, scan in scans.items()}
    actual["train_ids"] = int(scans["train"].frame["pid"].nunique())
    mismatches = [f"{COUNT_LABELS[k]}: expected {v}, found {actual[k]}" for k, v in expected.items() if k in actual and actual[k] != v]
    if mismatches and strict:
        raise DatasetError(
            "dataset counts differ from the expected ones:\n  "
            + "\n  ".join(mismatches)
            + "\nSet dataset.strict_counts: false to accept a custom subset (mismatches become warnings)."
        )
    for m in mismatches:
        log.warning("count mismatch: %s", m)
    return mismatches


def summarize(scans: dict[str, SplitScan], warnings: list[str], listing: DatasetListing) -> dict:
    out = {"source": listing.source, "root": display_path(listing.root), "count_warnings": warnings, **listing.extra, "splits": {}}
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


def write_listing(listing: DatasetListing, out_dir, expected: dict[str, int] | None, strict_counts: bool, skip_corrupt: bool, workers: int) -> dict:
    """Validate ``listing`` and write ``{train,query,gallery}.csv`` and ``summary.json`` into
    ``out_dir``; every check runs before any file is written. Returns the summary."""
    scans = {split: verify_split(split, listing.splits[split], skip_corrupt, workers) for split in SPLITS}
    for scan in scans.values():
        for p, why in scan.corrupt:
            log.warning("skipped corrupt image %s (%s)", p, why)
        if scan.ignored:
            log.info("%s: ignored %d file(s): %s", scan.split, len(scan.ignored), ", ".join(scan.ignored[:5]))
    warnings = check_counts(scans, expected or {}, strict_counts)
    summary = summarize(scans, warnings, listing)
    out_dir = Path(out_dir)
    for split, scan in scans.items():
        with atomic_path(out_dir / f"{split}.csv") as tmp:
            scan.frame.to_csv(tmp, index=False, errors=CSV_ERRORS)
    write_json(out_dir / "summary.json", summary)
    log.info("manifests: %s", ", ".join(f"{s} {v['images']} images / {v['ids']} ids" for s, v in summary["splits"].items()))
    return summary


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest and check its columns (path, pid, camid). File names that are not valid UTF-8
    come back exactly as they were listed (CSV_ERRORS)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: manifest not found")
    df = pd.read_csv(path, encoding_errors=CSV_ERRORS)
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}: manifest lacks column(s) {missing}; expected at least {MANIFEST_COLUMNS}")
    return df
