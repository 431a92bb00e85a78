"""Writes small Market-layout folders by hand (not with the project's generator) for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_jpeg(path: Path, seed: int, size=(32, 64)) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, "JPEG")


def make_market(root: Path, corrupt: str | None = None, extra_files: bool = True) -> dict:
    """train: ids 2, 7 (3 imgs each); query: ids 11, 13; gallery: their matches + junk + distractors."""
    layout = {
        "bounding_box_train": [
            "0002_c1s1_000151_01.jpg",
            "0002_c2s1_000301_01.jpg",
            "0002_c3s1_000451_02.jpg",
            "0007_c1s1_000101_01.jpg",
            "0007_c5s2_010101_01.jpg",
            "0007_c6s1_000201_03.jpg",
        ],
        "query": ["0011_c1s1_001051_00.jpg", "0013_c4s1_002051_00.jpg"],
        "bounding_box_test": [
            "0011_c1s1_001101_01.jpg",
            "0011_c3s1_001201_01.jpg",
            "0013_c2s1_002101_02.jpg",
            "0000_c1s1_000001_01.jpg",
            "0000_c6s1_000002_02.jpg",
            "-1_c1s1_000003_01.jpg",
            "-1_c2s1_000004_03.jpg",
        ],
    }
    seed = 0
    for folder, names in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for n in names:
            seed += 1
            write_jpeg(root / folder / n, seed)
    if extra_files:
        (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"\x00" * 10)
    if corrupt:
        p = root / "bounding_box_test" / corrupt
        p.write_bytes(p.read_bytes()[:200])  # truncated JPEG
    return {"train": 6, "train_ids": 2, "query": 2, "gallery": 7}
