"""Search of one's own crops (search.py) without the C++ program: the listing of an awkward folder
(every entry searched or skipped with its reason) and the append-only feature cache (concurrent
writers, corrupt shards)."""

import multiprocessing as mp
import os

import numpy as np
import pandas as pd
import pytest

from alignedreid.data.manifests import CSV_ERRORS
from alignedreid.foundation.errors import PipelineError
from alignedreid.search.cache import cache_index, gather_rows, write_shard
from alignedreid.search.listing import list_images
from tests.awkward_files import SKIPPED, make_corpus


def test_listing_an_awkward_folder_searches_or_skips_every_entry(tmp_path):
    folder = tmp_path / "crops"
    refs = make_corpus(folder)
    info = list_images(folder, tmp_path / "q.csv", tmp_path / "q_skipped.txt", "queries")
    df = pd.read_csv(tmp_path / "q.csv", encoding_errors=CSV_ERRORS)
    assert sorted(os.path.basename(p) for p in df.path) == sorted(refs)  # the non-UTF-8 and newline names exactly
    lines = (tmp_path / "q_skipped.txt").read_text(encoding="utf-8").splitlines()
    assert info == {"images": len(refs), "skipped": len(SKIPPED)} and len(lines) == len(SKIPPED)
    reasons = dict(line.split("\t", 1) for line in lines)
    for name, word in SKIPPED.items():
        entry = [r for p, r in reasons.items() if p.endswith("/" + name)]
        assert entry and word in entry[0], (name, entry)
    assert any("plain.jpg" in r for r in reasons.values() if "same file" in r)
    assert not (tmp_path / "crops" / "unsupported_image.gif").exists()


def test_a_folder_without_images_names_where_the_reasons_are(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.txt").write_text("x")
    with pytest.raises(PipelineError, match=r"no usable image under .*1 other entries, listed in .*skipped.txt"):
        list_images(tmp_path / "f", tmp_path / "q.csv", tmp_path / "skipped.txt", "queries")


def _writer(root, offset):
    keys = [f"{offset + i:064x}" for i in range(50)]
    write_shard(root, keys, np.full((50, 4), offset, np.float32), np.full((50, 2, 3), offset, np.float32))


def test_concurrent_writers_lose_nothing_and_a_corrupt_shard_is_dropped(tmp_path, caplog):
    root = tmp_path / "cache" / "model"
    procs = [mp.get_context("fork").Process(target=_writer, args=(root, k * 1000)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    index = cache_index(root)
    assert len(index) == 200 and len(list(root.glob("shard-*"))) == 4 and not list(root.glob(".tmp-*"))
    keys = [f"{3000 + 7:064x}", f"{1000:064x}", f"{3000 + 7:064x}"]
    g, loc = gather_rows(index, keys)
    assert list(g[:, 0]) == [3000, 1000, 3000] and loc.shape == (3, 2, 3)
    # a truncated shard: named, removed, the others still served
    broken = sorted(root.glob("shard-*"))[1]
    data = (broken / "local.npy").read_bytes()
    (broken / "local.npy").write_bytes(data[: len(data) // 2])
    index = cache_index(root)
    assert len(index) == 150 and not broken.exists()
    assert str(broken) in caplog.text and "computed again" in caplog.text


def test_matches_rank_by_distance_and_the_page_shows_each_decision(tmp_path):
    """search.ranking on two feature files written by the feature-file contract, then search.page: the
    top-k per query nearest first, the same-person decision from the threshold, one page with both."""
    from PIL import Image

    from alignedreid.features.files import save_features
    from alignedreid.search.page import write_search_report
    from alignedreid.search.ranking import search

    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (32, 64), (40 * i, 10, 200 - 30 * i)).save(p)
        paths.append(str(p))
    g = rng.normal(size=(4, 16)).astype(np.float32)
    loc = rng.normal(size=(4, 8, 4)).astype(np.float32)
    save_features(tmp_path / "g.npz", g, loc, np.zeros(4, int), np.zeros(4, int), paths[:4])
    q = g[[2]] + 0.01  # the query is gallery image 2, slightly moved
    save_features(tmp_path / "q.npz", q, loc[[2]], [0], [0], paths[4:])
    verification = {"variant": "global", "threshold": 0.5, "target_fpr": 1e-3, "tpr": 0.9}
    matches, n = search(tmp_path / "q.npz", tmp_path / "g.npz", verification, tmp_path / "m.csv", top_k=3)
    assert n == 4 and list(matches["rank"]) == [1, 2, 3] and matches.gallery[0] == paths[2]
    assert matches.distance.is_monotonic_increasing and list(matches.same_person) == [True, False, False]
    write_search_report(tmp_path / "m.csv", verification, tmp_path / "page.html", n, max_queries=10)
    html = (tmp_path / "page.html").read_text()
    assert html.count("data:image/") == 4 and "img2.png" in html and "0.5000" in html
