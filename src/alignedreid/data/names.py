"""File names and folders of the Market-style layouts: Market-1501's ``PPPP_cCsS_FFFFFF_BB.jpg``
(``-1_cCsS_...`` for junk), DukeMTMC-reID's and CUHK03-NP's patterns, the three split folders.
Standard library only: the dataset registry reads it at parse time."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..foundation.contracts import DISTRACTOR_PID, JUNK_PID  # noqa: F401 (re-exported for the data modules)

NAME_RE = re.compile(r"^(?P<pid>-1|\d{4})_c(?P<cam>\d)s(?P<seq>\d)_(?P<frame>\d{6})_(?P<box>\d{2})\.jpg$")


def format_name(pid: int, cam: int, seq: int, frame: int, box: int) -> str:
    """The Market-1501 name of a box (``cam`` 1-based); NAME_RE reads it back."""
    head = "-1" if pid == JUNK_PID else f"{pid:04d}"
    return f"{head}_c{cam}s{seq}_{frame:06d}_{box:02d}.jpg"


MARKET_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


@dataclass(frozen=True)
class NamedLayout:
    source: str
    display: str  # the dataset's name in messages and the report (data/sources.py reads it from here)
    pattern: re.Pattern  # named groups pid and cam (1-based camera)
    expected_name: str  # the pattern in words, for error messages
    extension: str


MARKET1501 = NamedLayout(
    "market1501",
    "Market-1501",
    NAME_RE,
    "PPPP_cCsS_FFFFFF_BB.jpg (4-digit person id or -1, camera digit, sequence digit, 6-digit frame, 2-digit box)",
    ".jpg",
)
DUKEMTMC = NamedLayout(
    "dukemtmc",
    "DukeMTMC-reID",
    re.compile(r"^(?P<pid>\d{4})_c(?P<cam>\d)_f(?P<frame>\d{7})\.jpg$"),
    "PPPP_cC_fFFFFFFF.jpg (4-digit person id, camera digit, 7-digit frame)",
    ".jpg",
)
CUHK03 = NamedLayout(
    "cuhk03",
    "CUHK03-NP",
    re.compile(r"^(?P<pid>\d{4})_c(?P<cam>\d)_(?P<index>\d+)\.png$"),
    "PPPP_cC_N.png (4-digit person id, camera digit, image number)",
    ".png",
)
