"""Atomic files and folders, JSON and sha256 (io_utils.py)."""

import hashlib

import pytest

from alignedreid.foundation.io_utils import atomic_directory, atomic_path, sha256_of


def test_atomic_helpers_leave_nothing_half_written(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done"
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "old").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(folder) as tmp:
            (tmp / "new").write_text("2")
            raise RuntimeError("killed")
    assert [p.name for p in folder.iterdir()] == ["old"] and len(list(tmp_path.iterdir())) == 2
    with atomic_directory(folder) as tmp:
        (tmp / "new").write_text("2")
    assert [p.name for p in folder.iterdir()] == ["new"]
    assert sha256_of(target, chunk=3) == hashlib.sha256(b"done").hexdigest()  # read in several chunks
