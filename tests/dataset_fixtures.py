"""Small hand-written copies of each supported release's layout (names, folders, list files,
junk where the release has it), written without the project's generator, for the source tests."""

from __future__ import annotations

from pathlib import Path

from tests.market_fixture import write_jpeg


def _write(root: Path, layout: dict[str, list[str]], fmt: str = "JPEG") -> None:
    seed = 100
    for folder, names in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for n in names:
            seed += 1
            (root / folder / n).parent.mkdir(parents=True, exist_ok=True)
            write_jpeg(root / folder / n, seed) if fmt == "JPEG" else _write_png(root / folder / n, seed)


def _write_png(path: Path, seed: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)).save(path, "PNG")


def make_duke(top: Path) -> Path:
    """DukeMTMC-reID/: ids 0005, 0008 train; 0012 queried; 7000 only in the gallery."""
    root = top / "DukeMTMC-reID"
    _write(
        root,
        {
            "bounding_box_train": ["0005_c1_f0051234.jpg", "0005_c3_f0052234.jpg", "0008_c2_f0060001.jpg", "0008_c8_f0060420.jpg"],
            "query": ["0012_c5_f0070001.jpg"],
            "bounding_box_test": ["0012_c5_f0070101.jpg", "0012_c7_f0071001.jpg", "7000_c1_f0100000.jpg"],
        },
    )
    return root


def make_cuhk03(top: Path) -> Path:
    """cuhk03-np/{labeled,detected}/: the two differ (detected has one gallery box more)."""
    for images, extra in (("labeled", []), ("detected", ["0020_c1_4.png"])):
        _write(
            top / "cuhk03-np" / images,
            {
                "bounding_box_train": ["0001_c1_1.png", "0001_c2_6.png", "0003_c1_2.png", "0003_c2_7.png"],
                "query": ["0020_c1_1.png", "0021_c2_8.png"],
                "bounding_box_test": ["0020_c2_6.png", "0021_c1_3.png", "0022_c1_2.png"] + extra,
            },
            fmt="PNG",
        )
    return top / "cuhk03-np"


MSMT_LISTS = {
    "list_train.txt": [
        "0000/0000_000_01_0303morning_0015_0.jpg 0",
        "0000/0000_001_05_0303noon_0102_1.jpg 0",
        "0001/0001_000_12_0303afternoon_0033_0.jpg 1",
    ],
    "list_val.txt": ["0001/0001_001_02_0303morning_0400_0.jpg 1"],
    "list_query.txt": ["0000/0000_000_15_0113morning_0020_0.jpg 0"],
    "list_gallery.txt": ["0000/0000_001_03_0113noon_0877_0.jpg 0", "0001/0001_000_07_0113noon_0900_1.jpg 1"],
}


def make_msmt17(top: Path, release: str = "V1") -> Path:
    """MSMT17_V1/ (train/, test/) or MSMT17_V2/ (mask_train_v2/, mask_test_v2/) with the four
    list files; one train image on disk is in no list (the lists are the truth)."""
    root = top / f"MSMT17_{release}"
    train, test = ("train", "test") if release == "V1" else ("mask_train_v2", "mask_test_v2")
    seed = 200
    for list_name, lines in MSMT_LISTS.items():
        folder = test if list_name in ("list_query.txt", "list_gallery.txt") else train
        for line in lines:
            seed += 1
            p = root / folder / line.split()[0]
            p.parent.mkdir(parents=True, exist_ok=True)
            write_jpeg(p, seed)
        (root / list_name).write_text("\n".join(lines) + "\n")
    write_jpeg(root / train / "0001" / "0001_009_04_0303noon_0999_0.jpg", 1)  # unlisted
    return root


def make_own_folder(top: Path) -> Path:
    """train/, query/, gallery/ with one folder per identity; camera in the name as cam<N>."""
    _write(
        top,
        {
            "train": ["alice/cam1_0001.jpg", "alice/cam2_0002.jpg", "bob/cam1_0003.jpg", "bob/cam10_0004.jpg"],
            "query": ["carol/cam2_0005.jpg"],
            "gallery": ["carol/cam1_0006.jpg", "carol/cam2_0007.jpg", "dave/cam10_0008.jpg"],
        },
    )
    (top / "gallery" / "dave" / "notes.txt").write_text("not an image")
    return top


def write_manifests(root, out_dir, expected=None, strict_counts=True, skip_corrupt=False, source="market1501", workers=4, **options) -> dict:
    """Read the ``source``-layout dataset at ``root`` and write its manifests (no generation or
    extraction); ``options`` are the source's config keys (cuhk03, folder), the rest defaults."""
    from alignedreid.data.manifests import write_listing
    from alignedreid.data.prepare import list_source
    from alignedreid.foundation.config import section_defaults

    cfg = {**section_defaults("dataset"), **options}
    return write_listing(list_source(source, root, cfg), out_dir, expected, strict_counts, skip_corrupt, workers)
