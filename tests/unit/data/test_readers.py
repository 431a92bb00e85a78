"""Each dataset source reads its hand-written fixture to exactly the expected manifests and
refuses each broken variant with an error naming the file."""

import re
from pathlib import Path

import pandas as pd
import pytest

from alignedreid.data.prepare import prepare_dataset
from alignedreid.foundation.errors import ConfigError, DatasetError
from tests.conftest import dataset_section
from tests.dataset_fixtures import make_cuhk03, make_duke, make_msmt17, make_own_folder, write_manifests


def _manifests(out):
    return {s: pd.read_csv(out / f"{s}.csv") for s in ("train", "query", "gallery")}


def _rows(df):
    return sorted((p.split("/")[-1], int(pid), int(cam)) for p, pid, cam in zip(df.path, df.pid, df.camid))


def test_dukemtmc_manifests(tmp_path):
    make_duke(tmp_path / "release")
    counts = {"train": 4, "train_ids": 2, "query": 1, "gallery": 3}
    summary = write_manifests(tmp_path / "release", tmp_path / "out", counts, source="dukemtmc")
    m = _manifests(tmp_path / "out")
    assert _rows(m["train"]) == [
        ("0005_c1_f0051234.jpg", 5, 0),
        ("0005_c3_f0052234.jpg", 5, 2),
        ("0008_c2_f0060001.jpg", 8, 1),
        ("0008_c8_f0060420.jpg", 8, 7),
    ]
    assert _rows(m["query"]) == [("0012_c5_f0070001.jpg", 12, 4)]
    assert _rows(m["gallery"]) == [("0012_c5_f0070101.jpg", 12, 4), ("0012_c7_f0071001.jpg", 12, 6), ("7000_c1_f0100000.jpg", 7000, 0)]
    assert summary["source"] == "dukemtmc" and summary["root"].endswith("DukeMTMC-reID")


def test_dukemtmc_refuses_market_names_and_junk(tmp_path):
    root = make_duke(tmp_path / "release")
    (root / "bounding_box_test" / "-1_c1_f0000001.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"bounding_box_test/-1_c1_f0000001.jpg.*not a DukeMTMC-reID image name; expected PPPP_cC_fFFFFFFF.jpg"):
        write_manifests(tmp_path / "release", tmp_path / "out", None, source="dukemtmc")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("images,gallery", [("labeled", 3), ("detected", 4)])
def test_cuhk03_labeled_and_detected(tmp_path, images, gallery):
    make_cuhk03(tmp_path / "release")
    counts = {"train": 4, "train_ids": 2, "query": 2, "gallery": gallery}
    summary = write_manifests(tmp_path / "release", tmp_path / "out", counts, source="cuhk03", cuhk03={"images": images})
    m = _manifests(tmp_path / "out")
    assert summary["root"].endswith(f"cuhk03-np/{images}") and summary["cuhk03_images"] == images
    assert _rows(m["query"]) == [("0020_c1_1.png", 20, 0), ("0021_c2_8.png", 21, 1)]
    assert len(m["gallery"]) == gallery and set(m["train"].pid) == {1, 3}


def test_cuhk03_published_counts_differ_by_images(tmp_path):
    make_cuhk03(tmp_path / "release")
    cfg = dataset_section({"source": "cuhk03", "root": str(tmp_path / "release"), "cuhk03": {"images": "detected"}})
    with pytest.raises(DatasetError, match=r"train images: expected 7365, found 4[\s\S]*gallery images: expected 5332, found 4"):
        prepare_dataset(cfg, tmp_path / "out")


def test_cuhk03_corrupt_png_named(tmp_path):
    root = make_cuhk03(tmp_path / "release")
    bad = root / "labeled" / "query" / "0020_c1_1.png"
    bad.write_bytes(bad.read_bytes()[:60])
    with pytest.raises(DatasetError, match=r"1 unreadable image\(s\) in .*labeled/query:\n  .*0020_c1_1.png"):
        write_manifests(tmp_path / "release", tmp_path / "out", None, source="cuhk03")


@pytest.mark.parametrize("release", ["V1", "V2"])
def test_msmt17_lists_are_the_truth(tmp_path, release):
    make_msmt17(tmp_path / "release", release)
    counts = {"train": 4, "train_ids": 2, "query": 1, "gallery": 2}
    summary = write_manifests(tmp_path / "release", tmp_path / "out", counts, source="msmt17")
    m = _manifests(tmp_path / "out")
    assert summary["release"] == release
    # pid = label + 1; camera = third name field - 1; list_val joins train; the unlisted image is absent
    assert _rows(m["train"]) == [
        ("0000_000_01_0303morning_0015_0.jpg", 1, 0),
        ("0000_001_05_0303noon_0102_1.jpg", 1, 4),
        ("0001_000_12_0303afternoon_0033_0.jpg", 2, 11),
        ("0001_001_02_0303morning_0400_0.jpg", 2, 1),
    ]
    assert _rows(m["query"]) == [("0000_000_15_0113morning_0020_0.jpg", 1, 14)]
    assert _rows(m["gallery"]) == [("0000_001_03_0113noon_0877_0.jpg", 1, 2), ("0001_000_07_0113noon_0900_1.jpg", 2, 6)]


def test_msmt17_list_naming_a_missing_image(tmp_path):
    root = make_msmt17(tmp_path / "release")
    (root / "test" / "0001" / "0001_000_07_0113noon_0900_1.jpg").unlink()
    with pytest.raises(DatasetError, match=r"list_gallery.txt, line 2: names 0001/0001_000_07_0113noon_0900_1.jpg, which is not in .*test"):
        write_manifests(tmp_path / "release", tmp_path / "out", None, source="msmt17")


@pytest.mark.parametrize(
    "line,needle",
    [
        ("0000/0000_000_01_0303morning_0015_0.jpg", r"list_val.txt, line 2: expected '<image path> <integer label>'"),
        ("0000/0000_000_01_0303morning_0015_0.jpg x", r"list_val.txt, line 2: expected '<image path> <integer label>'"),
        ("0000/weird.jpg 0", r"list_val.txt, line 2: 'weird.jpg' is not an MSMT17 image name"),
    ],
)
def test_msmt17_malformed_list_lines(tmp_path, line, needle):
    root = make_msmt17(tmp_path / "release")
    with open(root / "list_val.txt", "a") as fh:
        fh.write(line + "\n")
    with pytest.raises(DatasetError, match=needle):
        write_manifests(tmp_path / "release", tmp_path / "out", None, source="msmt17")


def test_msmt17_missing_list_file(tmp_path):
    root = make_msmt17(tmp_path / "release")
    (root / "list_val.txt").unlink()
    with pytest.raises(DatasetError, match=r"not an MSMT17 folder; expected list_train.txt, list_val.txt"):
        write_manifests(tmp_path / "release", tmp_path / "out", None, source="msmt17")


def test_own_folder_identities_and_cameras(tmp_path):
    make_own_folder(tmp_path / "crops")
    summary = write_manifests(tmp_path / "crops", tmp_path / "out", None, source="folder", folder={"camera_pattern": r"cam(?P<cam>\d+)_"})
    m = _manifests(tmp_path / "out")
    # cameras 1, 2, 10 numbered numerically -> 0, 1, 2; train ids alice 1, bob 2; test ids carol 1, dave 2
    assert summary["camera_ids"] == {"1": 0, "2": 1, "10": 2}
    assert sorted(zip(m["train"].identity, m["train"].pid, m["train"].camid)) == [("alice", 1, 0), ("alice", 1, 1), ("bob", 2, 0), ("bob", 2, 2)]
    assert list(zip(m["query"].identity, m["query"].pid, m["query"].camid)) == [("carol", 1, 1)]
    assert list(zip(m["gallery"].identity, m["gallery"].pid)) == [("carol", 1), ("carol", 1), ("dave", 2)]
    assert summary["splits"]["gallery"]["ignored_files"] == ["dave/notes.txt"]


def test_own_folder_failures(tmp_path):
    root = make_own_folder(tmp_path / "crops")
    needle = re.escape("train/alice/cam1_0001.jpg: file name does not match dataset.folder.camera_pattern 'camera(?P<cam>\\\\d)'")
    with pytest.raises(DatasetError, match=needle):
        write_manifests(root, tmp_path / "out", None, source="folder", folder={"camera_pattern": r"camera(?P<cam>\d)"})
    (root / "query" / "loose.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"query/loose.jpg: images must lie in one sub-folder per identity"):
        write_manifests(root, tmp_path / "out", None, source="folder", folder={"camera_pattern": r"cam(?P<cam>\d+)"})
    with pytest.raises(ConfigError, match="has no named group 'cam'"):
        write_manifests(root, tmp_path / "out", None, source="folder", folder={"camera_pattern": r"cam(\d+)"})


@pytest.mark.parametrize("source", ["dukemtmc", "cuhk03", "msmt17", "folder"])
def test_every_source_needs_a_root(tmp_path, source):
    with pytest.raises(ConfigError, match=f"dataset.root: required when dataset.source is '{source}'"):
        prepare_dataset(dataset_section({"source": source}), tmp_path / "out")


def test_msmt17_from_its_zip(tmp_path):
    import zipfile

    make_msmt17(tmp_path / "release", "V2")
    zpath = tmp_path / "MSMT17_V2.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted((tmp_path / "release").rglob("*")):
            zf.write(p, p.relative_to(tmp_path / "release").as_posix())
    cfg = dataset_section({"source": "msmt17", "root": str(zpath), "expected_counts": {"train": 4, "train_ids": 2, "query": 1, "gallery": 2}})
    summary = prepare_dataset(cfg, tmp_path / "out", work_dir=tmp_path / "work")
    assert summary["release"] == "V2" and summary["root"].endswith("extracted/MSMT17_V2")
    assert len(pd.read_csv(tmp_path / "out" / "gallery.csv")) == 2


def test_msmt17_from_its_tar_gz(tmp_path):
    """MSMT17 ships as MSMT17_V1.tar.gz: read as a zip is."""
    import tarfile

    make_msmt17(tmp_path / "release", "V1")
    tpath = tmp_path / "MSMT17_V1.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        tf.add(tmp_path / "release" / "MSMT17_V1", arcname="MSMT17_V1")
    cfg = dataset_section({"source": "msmt17", "root": str(tpath), "expected_counts": {"train": 4, "train_ids": 2, "query": 1, "gallery": 2}})
    summary = prepare_dataset(cfg, tmp_path / "out", work_dir=tmp_path / "work")
    assert summary["release"] == "V1" and summary["root"].endswith("extracted/MSMT17_V1")
    assert len(pd.read_csv(tmp_path / "out" / "gallery.csv")) == 2


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/abs_evil_tar.txt", "link"])
def test_tar_slip_and_links_refused(tmp_path, evil):
    import io
    import tarfile

    from alignedreid.data.extract import safe_extract

    t = tmp_path / "evil.tar.gz"
    with tarfile.open(t, "w:gz") as tf:
        info = tarfile.TarInfo("MSMT17_V1/test/ok.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"fine"))
        info = tarfile.TarInfo(evil)
        if evil == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
        else:
            info.size = 5
            tf.addfile(info, io.BytesIO(b"pwned"))
    with pytest.raises(DatasetError, match="refusing to extract"):
        safe_extract(t, tmp_path / "target" / "x")
    assert not (tmp_path / "target" / "x").exists() and not (tmp_path / "target" / "evil.txt").exists()
    (tmp_path / "broken.tgz").write_bytes(b"\x1f\x8bgarbage")
    with pytest.raises(DatasetError, match="broken.tgz: not a readable tar archive"):
        safe_extract(tmp_path / "broken.tgz", tmp_path / "t2")


def test_own_folder_ignores_stray_files_at_split_level(tmp_path):
    """macOS .DS_Store, Windows Thumbs.db or a readme beside the identity folders are listed, not errors."""
    root = make_own_folder(tmp_path / "crops")
    for junk in ("train/.DS_Store", "query/Thumbs.db", "gallery/README.txt"):
        (root / junk).write_bytes(b"\0\1")
    (root / "gallery" / ".ipynb_checkpoints").mkdir()
    summary = write_manifests(root, tmp_path / "out", None, source="folder", folder={"camera_pattern": r"cam(?P<cam>\d+)_"})
    assert ".DS_Store" in summary["splits"]["train"]["ignored_files"] and "Thumbs.db" in summary["splits"]["query"]["ignored_files"]
    assert {"README.txt", ".ipynb_checkpoints"} <= set(summary["splits"]["gallery"]["ignored_files"])


def test_each_reader_lists_its_release_directly(tmp_path):
    """The reader modules themselves (the registry wires them into prepare_dataset)."""
    from alignedreid.data import market_style, msmt17, own_folder

    duke = market_style.list_dataset(make_duke(tmp_path / "d"), market_style.DUKEMTMC)
    train = duke.splits["train"].frame
    assert duke.source == "dukemtmc" and len(train) == 4
    assert (Path(train.path[0]).name, int(train.pid[0]), int(train.camid[0])) == ("0005_c1_f0051234.jpg", 5, 0)
    with pytest.raises(DatasetError, match="DukeMTMC-reID"):
        market_style.list_dataset(tmp_path / "d", market_style.MARKET1501)  # another release's layout, named
    listed = msmt17.list_dataset(make_msmt17(tmp_path / "m"))
    assert listed.source == "msmt17" and not any("0999" in str(p) for p in listed.splits["train"].frame.path)  # the lists are the truth
    own = own_folder.list_dataset(make_own_folder(tmp_path / "o"), r"cam(?P<cam>\d+)")
    gallery = own.splits["gallery"].frame
    assert list(gallery.identity) == ["carol", "carol", "dave"] and own.extra["camera_ids"] == {"1": 0, "2": 1, "10": 2}
