"""The one image contract (data/images.py) on a corpus of awkward real-world files: what is searched
decodes, through MindSpore's pipeline, to exactly the pixels of the same image saved as a plain PNG;
everything else is refused with its reason, without opening special files; thumbnails are bounded."""

import os
import resource
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from alignedreid.data.images import MAX_PIXELS, UnusableImage, model_bytes, thumbnail_uri, why_unusable
from alignedreid.data.loader import eval_dataset
from tests.awkward_files import SKIPPED, bomb_png, make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "crops"
    return folder, make_corpus(folder)


def _decoded(paths, tmp_path):
    """uint8 [N, 128, 64, 3] as the evaluation pipeline (MindSpore Decode + resize) produces them."""
    df = pd.DataFrame({"path": [str(p) for p in paths], "pid": 0, "camid": 0})
    data = eval_dataset(df, 128, 64, batch_size=64, workers=1, normalise=False)
    return np.concatenate([b for b, _ in data.create_tuple_iterator(num_epochs=1, output_numpy=True)])


def test_every_searched_file_decodes_to_the_pixels_a_viewer_shows(corpus, tmp_path, monkeypatch):
    folder, refs = corpus
    monkeypatch.chdir(tmp_path)  # MindSpore's own fallback would write unsupported_image.* here
    names = sorted(refs)
    for name in names:
        assert why_unusable(folder / name) is None, name
    got = _decoded([folder / n for n in names], tmp_path)
    want = _decoded([refs[n] for n in names], tmp_path)
    for i, name in enumerate(names):
        np.testing.assert_array_equal(got[i], want[i], err_msg=name)
    assert list(tmp_path.iterdir()) == []  # nothing written beside
    # the rotated JPEG comes upright (128 x 64 before the resize), the 16-bit PNG is scaled, not clipped
    rotated = np.asarray(Image.open(refs["rotated.jpg"]))
    assert rotated.shape == (128, 64, 3)
    deep = got[names.index("deep16.png")]
    assert 20 < deep.mean() < 235


def test_native_files_pass_unchanged_and_others_become_png(corpus):
    folder, _ = corpus
    assert model_bytes(folder / "plain.jpg") == (folder / "plain.jpg").read_bytes()
    for name in ("anim.gif", "photo.webp", "deep16.png", "cmyk.jpg", "rotated.jpg", "palette.png", "alpha.png"):
        assert model_bytes(folder / name)[:8] == b"\x89PNG\r\n\x1a\n", name


def test_every_other_entry_is_refused_with_its_reason_without_being_opened(corpus):
    folder, _ = corpus
    for name, word in SKIPPED.items():
        if name in ("zz alias.jpg", ".DS_Store", ".hidden folder"):  # decided by the folder walk (duplicates, hidden)
            continue
        reason = why_unusable(folder / name)
        assert reason and word in reason, (name, reason)
    with pytest.raises(UnusableImage, match="fifo.jpg: not a regular file"):
        model_bytes(folder / "fifo.jpg")  # returns at once: a FIFO is never opened


def test_bombs_are_refused_before_decoding_within_bounded_memory(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png(20000))
    assert bomb.stat().st_size < 100_000
    code = (
        "import resource,sys; from alignedreid.data.images import why_unusable, thumbnail_uri; "
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        f"r = why_unusable({str(bomb)!r}); t = thumbnail_uri({str(bomb)!r}); "
        "print(r); print(len(t)); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert "decompression bomb" in out[0] or "too large" in out[0]
    assert out[1] == "0" and int(out[2]) < 50_000  # KiB: no 400-megapixel buffer
    big = tmp_path / "big.png"
    Image.new("L", (6000, 5000)).save(big)  # 30 megapixels: above the bound
    assert 6000 * 5000 > MAX_PIXELS and "too large: 6000x5000" in why_unusable(big)


def test_thumbnails_decode_at_reduced_size(tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (4000, 2000, 3), np.uint8)).save(photo, quality=90)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    uri = thumbnail_uri(photo, 96)
    assert uri.startswith("data:image/jpeg;base64,")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20_000  # KiB: JPEG draft mode, not 24 MB of pixels
    assert thumbnail_uri(tmp_path / "missing.jpg") == ""
    os.mkfifo(tmp_path / "pipe.jpg")
    assert thumbnail_uri(tmp_path / "pipe.jpg") == ""
