"""What a dataset section of the config must say beyond the schema: the synthetic generator's
spec (its rules between keys) and the own-folder camera pattern. Standard library only (with the
light dataset registry): the Snakefile runs :func:`check_datasets` at start-up, before any rule.
docs/architecture.md §1, "Configuration"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..foundation.errors import ConfigError
from . import sources


@dataclass(frozen=True)
class SyntheticSpec:
    seed: int
    train_ids: int
    test_ids: int
    images_per_id: int
    cameras: int
    queries_per_id: int
    distractors: int
    junk: int
    width: int
    height: int
    jpeg_quality: int
    # exact totals (None = ids x per-id counts); spread as evenly as possible over the identities
    train_images: int | None
    query_images: int | None
    gallery_images: int | None  # person images in the gallery, without distractors and junk
    layout: str  # which registered source's layout to write (data/sources.py)

    def __post_init__(self):
        writer = sources.REGISTRY[self.layout].writer if self.layout in sources.REGISTRY else sources.layouts.Writer
        checks = [
            (self.train_ids >= 2, "train_ids must be >= 2"),
            (self.test_ids >= 1, "test_ids must be >= 1"),
            (self.layout in sources.REGISTRY, f"layout must be one of {', '.join(sources.REGISTRY)}, got {self.layout!r}"),
            (
                2 <= self.cameras <= writer.max_cameras,
                f"cameras must be between 2 and {writer.max_cameras} for layout {self.layout} (camera digits in its file names)",
            ),
            (self.junk == 0 or writer.has_junk, f"junk must be 0 for layout {self.layout}: it has no junk images (Market-1501 has)"),
            (1 <= self.queries_per_id <= self.cameras, "queries_per_id must be between 1 and cameras"),
            (self.images_per_id > self.queries_per_id, "images_per_id must exceed queries_per_id"),
            (self.images_per_id >= 2, "images_per_id must be >= 2"),
            (self.train_ids + self.test_ids <= 9999, "train_ids + test_ids must be <= 9999 (4-digit ids)"),
            (self.distractors >= 0 and self.junk >= 0, "distractors and junk must be >= 0"),
            (self.width >= 16 and self.height >= 32, "width must be >= 16 and height >= 32"),
            (self.train_images is None or self.train_images >= 2 * self.train_ids, "train_images must be >= 2 x train_ids"),
            (
                self.query_images is None or self.test_ids <= self.query_images <= self.test_ids * self.cameras,
                "query_images must be between test_ids and test_ids x cameras (one query per camera and identity)",
            ),
            (self.gallery_images is None or self.gallery_images >= self.test_ids, "gallery_images must be >= test_ids"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"dataset.synthetic: {msg}")

    def totals(self) -> tuple[int, int, int]:
        """(train images, query images, gallery person images)."""
        return (
            self.train_images if self.train_images is not None else self.train_ids * self.images_per_id,
            self.query_images if self.query_images is not None else self.test_ids * self.queries_per_id,
            self.gallery_images if self.gallery_images is not None else self.test_ids * (self.images_per_id - self.queries_per_id),
        )

    def expected_counts(self) -> dict[str, int]:
        train, query, gallery = self.totals()
        return {"train": train, "train_ids": self.train_ids, "query": query, "gallery": gallery + self.distractors + self.junk}


def compile_pattern(pattern: str) -> re.Pattern:
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"dataset.folder.camera_pattern: {pattern!r} is not a regular expression ({e})") from None
    if "cam" not in rx.groupindex:
        raise ConfigError(f"dataset.folder.camera_pattern: {pattern!r} has no named group 'cam', e.g. 'c(?P<cam>\\d+)'")
    return rx


def check_dataset(ds: dict, where: str) -> None:
    """The synthetic spec's rules between keys and the camera pattern's named group of one dataset
    section (``where``: its key path), as a ConfigError naming the key."""
    try:
        if ds["source"] == sources.SYNTHETIC:
            SyntheticSpec(**ds["synthetic"])
        if ds["source"] == "folder":
            compile_pattern(ds["folder"]["camera_pattern"])
    except ConfigError as e:
        raise ConfigError(str(e).replace("dataset.", f"{where}.", 1) if where != "dataset" else str(e)) from None


def check_datasets(cfg: dict) -> None:
    """:func:`check_dataset` on the resolved config's dataset sections (dataset, evaluation.dataset)."""
    for where, ds in (("dataset", cfg["dataset"]), ("evaluation.dataset", cfg["evaluation"]["dataset"])):
        if ds is not None:
            check_dataset(ds, where)
