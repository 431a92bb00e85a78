"""The ``prepare_dataset`` stage: a dataset folder or zip (or the synthetic generator) -> validated
manifests. ``dataset.source`` picks the layout: market1501, dukemtmc, cuhk03, msmt17, folder,
or synthetic (which writes any of those layouts and then reads it back like the real one)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import section_defaults
from ..errors import ConfigError, DatasetError
from . import market_style, msmt17, own_folder
from .extract import ARCHIVE_SUFFIXES, is_archive, safe_extract
from .manifests import DatasetListing, write_listing
from .synthetic import SyntheticSpec, generate

log = logging.getLogger(__name__)

SOURCES = ("market1501", "dukemtmc", "cuhk03", "msmt17", "folder")


def published_counts(source: str, dataset_cfg: dict) -> dict | None:
    """The counts a complete release of ``source`` has (None for a user's own folder)."""
    if source == "msmt17":
        return msmt17.PUBLISHED_COUNTS
    if source == "cuhk03":
        return market_style.PUBLISHED_COUNTS[f"cuhk03/{dataset_cfg['cuhk03']['images']}"]
    return market_style.PUBLISHED_COUNTS.get(source)


def list_source(source: str, root, dataset_cfg: dict) -> DatasetListing:
    """Every image of the dataset at ``root`` with its identity and camera, per split."""
    if source == "market1501":
        return market_style.list_dataset(root, market_style.MARKET1501)
    if source == "dukemtmc":
        return market_style.list_dataset(root, market_style.DUKEMTMC)
    if source == "cuhk03":
        return market_style.list_dataset(root, market_style.CUHK03, subfolder=dataset_cfg["cuhk03"]["images"])
    if source == "msmt17":
        return msmt17.list_dataset(root)
    if source == "folder":
        return own_folder.list_dataset(root, dataset_cfg["folder"]["camera_pattern"])
    raise ConfigError(f"dataset.source: expected one of synthetic, {', '.join(SOURCES)}; got {source!r}")


def resolve_source(dataset_cfg: dict, work_dir) -> tuple[str, Path, dict | None]:
    """(layout, folder to read, expected counts) for the ``dataset`` config section,
    generating or extracting into ``work_dir`` as needed."""
    work_dir = Path(work_dir)
    source = dataset_cfg["source"]
    if source == "synthetic":
        spec = SyntheticSpec(**dataset_cfg["synthetic"])
        root = generate(spec, work_dir / "synthetic", cuhk03_images=dataset_cfg["cuhk03"]["images"])
        log.info("generated a synthetic %s-layout dataset in %s", spec.layout, root)
        return spec.layout, root, spec.expected_counts()
    if source not in SOURCES:
        raise ConfigError(f"dataset.source: expected one of synthetic, {', '.join(SOURCES)}; got {source!r}")
    root = dataset_cfg["root"]
    if not root:
        raise ConfigError(f"dataset.root: required when dataset.source is {source!r} (the dataset's folder or its zip)")
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: dataset.root does not exist (expected a {source} folder, .zip or .tar.gz)")
    if root.is_file():
        if not is_archive(root):
            raise DatasetError(f"{root}: dataset.root is a file but not an archive (expected one of {', '.join(ARCHIVE_SUFFIXES)})")
        root = safe_extract(root, work_dir / "extracted")
    expected = dataset_cfg["expected_counts"] or published_counts(source, dataset_cfg)
    return source, root, dict(expected) if expected else None


def prepare_dataset(dataset_cfg: dict, out_dir, work_dir=None, workers: int = 1) -> dict:
    """The prepare_dataset stage. ``dataset_cfg`` is the validated ``dataset`` section (every key
    present, see alignedreid.config); ``workers`` the threads that decode-check images."""
    work_dir = Path(work_dir) if work_dir else Path(out_dir)
    layout, root, expected = resolve_source(dataset_cfg, work_dir)
    listing = list_source(layout, root, dataset_cfg)
    if dataset_cfg["source"] == "synthetic":
        listing.extra["synthetic_layout"] = layout
        listing.source = "synthetic"
    return write_listing(
        listing, out_dir, expected=expected, strict_counts=dataset_cfg["strict_counts"], skip_corrupt=dataset_cfg["skip_corrupt"], workers=workers
    )


def write_manifests(root, out_dir, expected=None, strict_counts=True, skip_corrupt=False, source="market1501", workers=4, **options) -> dict:
    """Read the ``source``-layout dataset at ``root`` and write its manifests (no generation or
    extraction); ``options`` are the source's config keys (cuhk03, folder)."""
    cfg = {**section_defaults("dataset"), **options}
    listing = list_source(source, root, cfg)
    return write_listing(listing, out_dir, expected, strict_counts, skip_corrupt, workers)
