from dataclasses import dataclass

import pytest

from alignedreid.data.names import NAME_RE, format_name
from alignedreid.foundation.errors import DatasetError


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


@pytest.mark.parametrize(
    "name,pid,camid,frame",
    [
        ("0002_c1s1_000451_03.jpg", 2, 0, 451),
        ("1501_c6s4_001877_00.jpg", 1501, 5, 1877),
        ("0000_c3s2_000001_01.jpg", 0, 2, 1),
        ("-1_c2s1_000301_01.jpg", -1, 1, 301),
    ],
)
def test_valid_names(name, pid, camid, frame):
    n = parse_name(name)
    assert (n.pid, n.camid, n.frame) == (pid, camid, frame)


@pytest.mark.parametrize(
    "name",
    [
        "0002_c1s1_000451_03.png",
        "002_c1s1_000451_03.jpg",
        "0002_c0s1_000451_03.jpg",
        "0002_c1_000451_03.jpg",
        "-2_c1s1_000451_03.jpg",
        "0002_c1s1_45_03.jpg",
        "Thumbs.db",
        "0002_c1s1_000451_03.jpg.bak",
    ],
)
def test_invalid_names(name):
    with pytest.raises(DatasetError, match="not a Market-1501 image name|camera"):
        parse_name(name)


def test_format_roundtrip():
    for pid in (-1, 0, 7, 1501):
        n = parse_name(format_name(pid, 3, 1, 1234, 2))
        assert (n.pid, n.camid, n.frame, n.box) == (pid, 2, 1234, 2)
