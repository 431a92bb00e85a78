"""The dataset registry: one entry per ``dataset.source`` (docs/architecture.md §2).

An entry says everything the pipeline knows about a source: its name in messages and the report,
how its folder is read into a listing, the counts of a complete release, and how the synthetic
generator writes the same layout. The readers are imported when a folder is read (they load pandas
and Pillow), so the registry itself is light: the Snakefile's start-up checks read it. Adding a source is one reader module (plus a writer) and one
``register`` line; the schema's enums and the README's dataset table are checked against
``REGISTRY`` by a test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..foundation.errors import ConfigError
from . import names
from . import synthetic_layouts as layouts

if TYPE_CHECKING:
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


# the readers, each imported when a folder is read (written out, so that code_closure follows them)
def _read_market_style(root, layout: names.NamedLayout, subfolder: str | None = None) -> DatasetListing:
    from . import market_style

    return market_style.list_dataset(root, layout, subfolder=subfolder)


def _read_msmt17(root, cfg: dict) -> DatasetListing:
    from . import msmt17

    return msmt17.list_dataset(root)


def _read_own_folder(root, cfg: dict) -> DatasetListing:
    from . import own_folder

    return own_folder.list_dataset(root, cfg["folder"]["camera_pattern"])


def _market_style(layout: names.NamedLayout, counts: dict, writer: type[layouts.Writer]) -> Source:
    return Source(layout.source, layout.display, lambda root, cfg: _read_market_style(root, layout), _fixed(counts), writer)


register(
    _market_style(
        names.MARKET1501,
        {"train": 12936, "train_ids": 751, "query": 3368, "gallery": 19732},
        layouts.MarketWriter,
    )
)
register(
    _market_style(
        names.DUKEMTMC,
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
        names.CUHK03.display,
        lambda root, cfg: _read_market_style(root, names.CUHK03, subfolder=cfg["cuhk03"]["images"]),
        lambda cfg: CUHK03_COUNTS[cfg["cuhk03"]["images"]],
        layouts.CUHK03Writer,
    )
)
register(
    Source(
        "msmt17",
        "MSMT17",
        _read_msmt17,
        _fixed({"train": 32621, "train_ids": 1041, "query": 11659, "gallery": 82161}),
        layouts.MSMT17Writer,
    )
)
register(
    Source(
        "folder",
        "own folder",
        _read_own_folder,
        _fixed(None),
        layouts.FolderWriter,
    )
)
