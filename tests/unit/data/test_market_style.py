import json
import zipfile

import pandas as pd
import pytest

from alignedreid.data.extract import safe_extract
from alignedreid.data.prepare import prepare_dataset
from alignedreid.data.sources import REGISTRY
from alignedreid.foundation.errors import ConfigError, DatasetError
from tests.conftest import dataset_section
from tests.dataset_fixtures import write_manifests
from tests.market_fixture import make_market


def test_manifests_match_contract(tmp_path):
    counts = make_market(tmp_path / "m")
    out = tmp_path / "out"
    summary = write_manifests(tmp_path / "m", out, expected=counts)
    train, query, gallery = (pd.read_csv(out / f"{s}.csv") for s in ("train", "query", "gallery"))
    for df in (train, query, gallery):
        assert list(df.columns[:3]) == ["path", "pid", "camid"]
        assert df.pid.dtype.kind == "i" and df.camid.dtype.kind == "i"
    assert sorted(train.pid.unique()) == [2, 7]  # original ids, no relabelling
    assert set(train.camid) == {0, 1, 2, 4, 5}  # c1 -> 0 ... c6 -> 5
    assert list(query.pid) == [11, 13]
    assert sorted(gallery.pid) == [-1, -1, 0, 0, 11, 11, 13]  # junk kept in the manifest
    assert len(gallery) == 7  # Thumbs.db ignored
    row = gallery[gallery.path.str.endswith("0013_c2s1_002101_02.jpg")].iloc[0]
    assert (row.pid, row.camid) == (13, 1)
    assert summary["splits"]["gallery"]["junk"] == 2 and summary["splits"]["gallery"]["distractors"] == 2
    assert summary["splits"]["gallery"]["ignored_files"] == ["Thumbs.db"]
    assert json.loads((out / "summary.json").read_text())["splits"]["train"]["ids"] == 2


def test_corrupt_image_is_error_naming_file(tmp_path):
    counts = make_market(tmp_path / "m", corrupt="0011_c3s1_001201_01.jpg")
    with pytest.raises(DatasetError, match="0011_c3s1_001201_01.jpg"):
        write_manifests(tmp_path / "m", tmp_path / "out", expected=counts)
    assert not (tmp_path / "out" / "train.csv").exists()  # nothing half-written


def test_corrupt_image_skipped_when_asked(tmp_path):
    counts = make_market(tmp_path / "m", corrupt="0011_c3s1_001201_01.jpg")
    summary = write_manifests(tmp_path / "m", tmp_path / "out", expected=counts, skip_corrupt=True)
    gallery = pd.read_csv(tmp_path / "out" / "gallery.csv")
    assert len(gallery) == 6
    assert not gallery.path.str.contains("0011_c3s1_001201_01").any()
    assert summary["splits"]["gallery"]["corrupt_skipped"][0].endswith("0011_c3s1_001201_01.jpg")


def test_count_mismatch_strict_and_relaxed(tmp_path):
    make_market(tmp_path / "m")
    with pytest.raises(DatasetError, match=r"train images: expected 12936, found 6"):
        write_manifests(tmp_path / "m", tmp_path / "out", expected=REGISTRY["market1501"].counts({}))
    summary = write_manifests(tmp_path / "m", tmp_path / "out", expected=REGISTRY["market1501"].counts({}), strict_counts=False)
    assert any("query images: expected 3368, found 2" in w for w in summary["count_warnings"])


def test_bad_names_and_layout(tmp_path):
    make_market(tmp_path / "m")
    (tmp_path / "m" / "query" / "person_12.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"query/person_12.jpg.*PPPP_cCsS"):
        write_manifests(tmp_path / "m", tmp_path / "out", expected=None)
    with pytest.raises(DatasetError, match="missing here: bounding_box_train, query, bounding_box_test"):
        write_manifests(tmp_path / "empty_dir_that_exists" if (tmp_path / "empty_dir_that_exists").mkdir() is None else None, tmp_path / "o", None)


def test_junk_in_train_rejected(tmp_path):
    make_market(tmp_path / "m")
    (tmp_path / "m" / "bounding_box_test" / "-1_c1s1_000003_01.jpg").rename(tmp_path / "m" / "bounding_box_train" / "-1_c1s1_000003_01.jpg")
    with pytest.raises(DatasetError, match="junk .* belong only in bounding_box_test"):
        write_manifests(tmp_path / "m", tmp_path / "out", expected=None)


def _zip_folder(folder, zpath, prefix="Market-1501-v15.09.15/"):
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, prefix + p.relative_to(folder).as_posix())


def test_zip_source_end_to_end(tmp_path):
    counts = make_market(tmp_path / "m")
    _zip_folder(tmp_path / "m", tmp_path / "market.zip")
    cfg = {"source": "market1501", "root": str(tmp_path / "market.zip"), "expected_counts": counts}
    summary = prepare_dataset(dataset_section(cfg), tmp_path / "out", work_dir=tmp_path / "work")
    assert summary["splits"]["train"]["images"] == 6
    paths = pd.read_csv(tmp_path / "out" / "train.csv").path
    assert all("work/extracted/Market-1501-v15.09.15/bounding_box_train/" in p for p in paths)


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/abs_evil.txt", "a/../../evil.txt"])
def test_zip_slip_refused(tmp_path, evil):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("Market/query/0001_c1s1_000001_01.jpg", b"fine")
        zf.writestr(evil, b"pwned")
    with pytest.raises(DatasetError, match="refusing to extract"):
        safe_extract(z, tmp_path / "target" / "x")
    assert not (tmp_path / "target" / "x").exists()
    assert not (tmp_path / "target" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_zip_symlink_refused(tmp_path):
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("Market/query/link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DatasetError, match="symbolic link"):
        safe_extract(z, tmp_path / "t")


def test_not_a_zip(tmp_path):
    z = tmp_path / "broken.zip"
    z.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DatasetError, match="broken.zip: not a readable zip"):
        prepare_dataset(dataset_section({"source": "market1501", "root": str(z)}), tmp_path / "out")


def test_missing_root(tmp_path):
    with pytest.raises(ConfigError, match="dataset.root: required"):
        prepare_dataset(dataset_section({"source": "market1501", "root": None}), tmp_path / "out")
    with pytest.raises(DatasetError, match="does not exist"):
        prepare_dataset(dataset_section({"source": "market1501", "root": str(tmp_path / "nope")}), tmp_path / "out")
