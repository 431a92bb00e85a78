"""Archive limits and member checks (data/extract.py): bombs by size or ratio, sparse tar members,
encrypted, conflicting and duplicate zip entries -- each a one-line DatasetError naming the entry,
nothing written."""

import io
import tarfile
import warnings
import zipfile

import pytest

from alignedreid.data.extract import safe_extract
from alignedreid.foundation.errors import DatasetError


def _zip(path, entries):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we write on purpose
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in entries:
                z.writestr(name, data)
    return path


def test_a_compression_bomb_is_refused_by_ratio_and_by_total_size(tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", [("Market/a.jpg", b"\0" * (200 * 2**20))])
    assert bomb.stat().st_size < 300_000
    with pytest.raises(DatasetError, match=r"entry 'Market/a.jpg' expands \d+:1 .*dataset.archive.max_ratio \(100\)"):
        safe_extract(bomb, tmp_path / "t")
    with pytest.raises(DatasetError, match=r"reaches 0.2 GB at entry 'Market/a.jpg', above dataset.archive.max_gb \(0.1\)"):
        safe_extract(bomb, tmp_path / "t", {"max_gb": 0.1, "max_ratio": 10000})
    assert not (tmp_path / "t").exists()
    safe_extract(bomb, tmp_path / "t", {"max_gb": 1, "max_ratio": 10000})  # allowed when the user raises the limits
    assert (tmp_path / "t/Market/a.jpg").stat().st_size == 200 * 2**20


def test_duplicate_and_conflicting_entries_are_refused(tmp_path):
    dup = _zip(tmp_path / "dup.zip", [("a/x.jpg", b"1"), ("a/x.jpg", b"2")])
    with pytest.raises(DatasetError, match=r"entries 'a/x.jpg' and 'a/x.jpg' are the same path"):
        safe_extract(dup, tmp_path / "t")
    clash = _zip(tmp_path / "clash.zip", [("a/x", b"file"), ("a/x/y.jpg", b"2")])
    with pytest.raises(DatasetError, match=r"entry 'a/x' is a file but 'a/x/y.jpg' needs it to be a folder"):
        safe_extract(clash, tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_an_encrypted_entry_is_named(tmp_path):
    path = _zip(tmp_path / "enc.zip", [("a/x.jpg", b"secret")])
    data = bytearray(path.read_bytes())
    # set the 'encrypted' flag bit in the local and central headers of the one entry
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.index(sig)
        data[i + off] |= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"entry 'a/x.jpg' is encrypted; extract the archive yourself"):
        safe_extract(path, tmp_path / "t")


def test_a_sparse_tar_member_is_refused(tmp_path):
    path = tmp_path / "sparse.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("a/x.jpg")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"abcd"))
    data = bytearray(path.read_bytes())
    data[156] = ord("S")  # GNU sparse type flag; fix the header checksum
    data[148:156] = b" " * 8
    data[148:155] = f"{sum(data[:512]):06o}\0".encode()
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"entry 'a/x.jpg' is a sparse file"):
        safe_extract(path, tmp_path / "t")
