"""The ``prepare_dataset`` stage: a dataset folder or archive (or the synthetic generator) ->
validated manifests. ``dataset.source`` names a registered source (data/sources.py) or synthetic,
which writes a registered layout and then reads it back like the real one."""

from __future__ import annotations

import logging
from pathlib import Path

from ..foundation.errors import ConfigError, DatasetError
from . import sources
from .extract import ARCHIVE_SUFFIXES, is_archive, safe_extract
from .manifests import DatasetListing, write_listing
from .spec import SyntheticSpec
from .synthetic import generate

log = logging.getLogger(__name__)


def list_source(source: str, root, dataset_cfg: dict) -> DatasetListing:
    """Every image of the dataset at ``root`` with its identity and camera, per split."""
    return sources.get(source).read(root, dataset_cfg)


def resolve_source(dataset_cfg: dict, work_dir) -> tuple[str, Path, dict | None]:
    """(layout, folder to read, expected counts) for the ``dataset`` config section,
    generating or extracting into ``work_dir`` as needed."""
    work_dir = Path(work_dir)
    source = dataset_cfg["source"]
    if source == "synthetic":
        spec = SyntheticSpec(**dataset_cfg["synthetic"])
        root = generate(spec, work_dir / "synthetic", dataset_cfg)
        log.info("generated a synthetic %s-layout dataset in %s", spec.layout, root)
        return spec.layout, root, spec.expected_counts()
    entry = sources.get(source)
    root = dataset_cfg["root"]
    if not root:
        raise ConfigError(f"dataset.root: required when dataset.source is {source!r} (the dataset's folder or its zip)")
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: dataset.root does not exist (expected a {source} folder, .zip or .tar.gz)")
    if root.is_file():
        if not is_archive(root):
            raise DatasetError(f"{root}: dataset.root is a file but not an archive (expected one of {', '.join(ARCHIVE_SUFFIXES)})")
        root = safe_extract(root, work_dir / "extracted", dataset_cfg["archive"])
    expected = dataset_cfg["expected_counts"] or entry.counts(dataset_cfg)
    return source, root, dict(expected) if expected else None


def prepare_dataset(dataset_cfg: dict, out_dir, work_dir=None, workers: int = 1) -> dict:
    """The prepare_dataset stage. ``dataset_cfg`` is the validated ``dataset`` section (every key
    present, see alignedreid.foundation.config); ``workers`` the threads that decode-check images."""
    work_dir = Path(work_dir) if work_dir else Path(out_dir)
    layout, root, expected = resolve_source(dataset_cfg, work_dir)
    listing = list_source(layout, root, dataset_cfg)
    if dataset_cfg["source"] == "synthetic":
        listing.extra["synthetic_layout"] = layout
        listing.source = "synthetic"
    return write_listing(
        listing, out_dir, expected=expected, strict_counts=dataset_cfg["strict_counts"], skip_corrupt=dataset_cfg["skip_corrupt"], workers=workers
    )
