"""Market-1501 file names: ``PPPP_cCsS_FFFFFF_BB.jpg`` (``-1_cCsS_...`` for junk)."""

from __future__ import annotations

import re

from ..contracts import DISTRACTOR_PID, JUNK_PID  # noqa: F401 (re-exported for the data modules)

NAME_RE = re.compile(r"^(?P<pid>-1|\d{4})_c(?P<cam>\d)s(?P<seq>\d)_(?P<frame>\d{6})_(?P<box>\d{2})\.jpg$")


def format_name(pid: int, cam: int, seq: int, frame: int, box: int) -> str:
    """The Market-1501 name of a box (``cam`` 1-based); NAME_RE reads it back."""
    head = "-1" if pid == JUNK_PID else f"{pid:04d}"
    return f"{head}_c{cam}s{seq}_{frame:06d}_{box:02d}.jpg"
