"""The ``prepare_dataset`` stage: a Market-1501 folder, zip or synthetic spec -> manifests."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import ConfigError, DatasetError
from .extract import safe_extract
from .market import MARKET1501_COUNTS, write_manifests
from .synthetic import SyntheticSpec, generate

log = logging.getLogger(__name__)


def resolve_source(dataset_cfg: dict, work_dir: str | os.PathLike) -> tuple[Path, dict | None]:
    """Return (Market-layout folder, expected counts) for the ``dataset`` config section,
    generating or extracting into ``work_dir`` as needed."""
    work_dir = Path(work_dir)
    source = dataset_cfg["source"]
    if source == "synthetic":
        spec = SyntheticSpec(**dataset_cfg["synthetic"])
        root = generate(spec, work_dir / "synthetic")
        log.info("generated synthetic dataset in %s", root)
        return root, spec.expected_counts()
    if source != "market1501":
        raise ConfigError(f"dataset.source: expected 'synthetic' or 'market1501', got {source!r}")
    root = dataset_cfg["root"]
    if not root:
        raise ConfigError("dataset.root: required when dataset.source is 'market1501' (a Market-1501 folder or its zip)")
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: dataset.root does not exist (expected a Market-1501 folder or .zip)")
    if root.is_file():
        if root.suffix.lower() != ".zip":
            raise DatasetError(f"{root}: dataset.root is a file but not a .zip")
        root = safe_extract(root, work_dir / "extracted")
    expected = dataset_cfg["expected_counts"] or MARKET1501_COUNTS
    return root, dict(expected)


def prepare_dataset(dataset_cfg: dict, out_dir: str | os.PathLike, work_dir: str | os.PathLike | None = None, workers: int = 1) -> dict:
    """The prepare_dataset stage. ``dataset_cfg`` is the validated ``dataset`` section (every key
    present, see alignedreid.config); ``workers`` the threads that decode-check images."""
    work_dir = Path(work_dir) if work_dir else Path(out_dir)
    root, expected = resolve_source(dataset_cfg, work_dir)
    return write_manifests(
        root,
        out_dir,
        expected=expected,
        strict_counts=dataset_cfg["strict_counts"],
        skip_corrupt=dataset_cfg["skip_corrupt"],
        source=dataset_cfg["source"],
        workers=workers,
    )
