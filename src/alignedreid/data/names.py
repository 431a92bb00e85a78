"""Market-1501 file names: ``PPPP_cCsS_FFFFFF_BB.jpg`` (``-1_cCsS_...`` for junk)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..contracts import DISTRACTOR_PID, JUNK_PID  # noqa: F401 (re-exported for the data modules)
from ..errors import DatasetError

NAME_RE = re.compile(r"^(?P<pid>-1|\d{4})_c(?P<cam>\d)s(?P<seq>\d)_(?P<frame>\d{6})_(?P<box>\d{2})\.jpg$")


@dataclass(frozen=True)
class MarketName:
    pid: int
    camid: int  # 0-based: file c1 -> 0
    seq: int
    frame: int
    box: int


def parse_name(name: str) -> MarketName:
    """Parse one Market-1501 file name; raise DatasetError naming the file if it does not fit."""
    m = NAME_RE.match(name)
    if m is None:
        raise DatasetError(
            f"{name!r} is not a Market-1501 image name; expected PPPP_cCsS_FFFFFF_BB.jpg "
            "(4-digit person id or -1, camera digit, sequence digit, 6-digit frame, 2-digit box)"
        )
    cam = int(m["cam"])
    if cam < 1:
        raise DatasetError(f"{name!r}: camera index must start at c1, got c{cam}")
    return MarketName(pid=int(m["pid"]), camid=cam - 1, seq=int(m["seq"]), frame=int(m["frame"]), box=int(m["box"]))


def format_name(pid: int, cam: int, seq: int, frame: int, box: int) -> str:
    """Inverse of :func:`parse_name` with a 1-based camera number ``cam``."""
    head = "-1" if pid == JUNK_PID else f"{pid:04d}"
    return f"{head}_c{cam}s{seq}_{frame:06d}_{box:02d}.jpg"
