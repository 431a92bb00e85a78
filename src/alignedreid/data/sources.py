"""The dataset registry: one entry per ``dataset.source`` (docs/architecture.md §2).

An entry says everything the pipeline knows about a source: its name in messages and the report,
how its folder is read into a listing, the counts of a complete release, and how the synthetic
generator writes the same layout. Adding a source is one reader module (plus a writer) and one
``register`` line; the schema's enums and the README's dataset table are checked against
``REGISTRY`` by a test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from . import market_style, msmt17, own_folder
from . import synthetic_layouts as layouts
from .manifests import DatasetListing

SYNTHETIC = "synthetic"  # the generator: writes any registered layout, then reads it back


@dataclass(frozen=True)
class Source:
    key: str  # the dataset.source value
    name: str  # the dataset's name in messages and the report
    read: Callable[[Path, dict], DatasetListing]  # (folder, the dataset config section) -> listing
    counts: Callable[[dict], dict | None]  # the dataset section -> the published counts (None: none published)
    writer: type[layouts.Writer]  # where the synthetic generator writes this layout's files


REGISTRY: dict[str, Source] = {}


def register(source: Source) -> Source:
    if source.key == SYNTHETIC or source.key in REGISTRY:
        raise ValueError(f"dataset source {source.key!r} is already registered")
    REGISTRY[source.key] = source
    return source


def get(key: str) -> Source:
    """The registered source ``key``; a ConfigError naming the choices otherwise."""
    if key not in REGISTRY:
        raise ConfigError(f"dataset.source: expected one of {SYNTHETIC}, {', '.join(REGISTRY)}; got {key!r}")
    return REGISTRY[key]


def display_name(key: str) -> str:
    return REGISTRY[key].name if key in REGISTRY else key


def _fixed(counts: dict | None):
    return lambda cfg: counts


def _market_style(layout: market_style.NamedLayout, counts: dict, writer: type[layouts.Writer]) -> Source:
    return Source(layout.source, layout.display, lambda root, cfg: market_style.list_dataset(root, layout), _fixed(counts), writer)


register(
    _market_style(
        market_style.MARKET1501,
        {"train": 12936, "train_ids": 751, "query": 3368, "gallery": 19732},
        layouts.MarketWriter,
    )
)
register(
    _market_style(
        market_style.DUKEMTMC,
        {"train": 16522, "train_ids": 702, "query": 2228, "gallery": 17661},
        layouts.DukeWriter,
    )
)
CUHK03_COUNTS = {
    "labeled": {"train": 7368, "train_ids": 767, "query": 1400, "gallery": 5328},
    "detected": {"train": 7365, "train_ids": 767, "query": 1400, "gallery": 5332},
}
register(
    Source(
        "cuhk03",
        market_style.CUHK03.display,
        lambda root, cfg: market_style.list_dataset(root, market_style.CUHK03, subfolder=cfg["cuhk03"]["images"]),
        lambda cfg: CUHK03_COUNTS[cfg["cuhk03"]["images"]],
        layouts.CUHK03Writer,
    )
)
register(
    Source(
        "msmt17",
        "MSMT17",
        lambda root, cfg: msmt17.list_dataset(root),
        _fixed({"train": 32621, "train_ids": 1041, "query": 11659, "gallery": 82161}),
        layouts.MSMT17Writer,
    )
)
register(
    Source(
        "folder",
        "own folder",
        lambda root, cfg: own_folder.list_dataset(root, cfg["folder"]["camera_pattern"]),
        _fixed(None),
        layouts.FolderWriter,
    )
)
