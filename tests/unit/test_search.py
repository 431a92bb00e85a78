"""Search of one's own crops (search.py) without the C++ program: the listing of an awkward folder
(every entry searched or skipped with its reason) and the append-only feature cache (concurrent
writers, corrupt shards)."""

import multiprocessing as mp
import os

import numpy as np
import pandas as pd
import pytest

from alignedreid.data.manifests import CSV_ERRORS
from alignedreid.features.store import FeatureStore
from alignedreid.foundation.errors import PipelineError
from alignedreid.search.cache import key_rows
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


@pytest.mark.parametrize("shards", [2, 5, 40])
def test_the_shards_of_a_listing_join_into_the_one_job_listing(tmp_path, shards):
    """search_list in shards (search.shards; 40: more shards than entries, most of them empty), joined:
    the same manifest as one job, in the same order, and the same skipped entries with the same
    reasons -- the duplicate (a link to plain.jpg) found across shards too."""
    from alignedreid.search.listing import join_listings

    folder = tmp_path / "crops"
    make_corpus(folder)
    list_images(folder, tmp_path / "one.csv", tmp_path / "one_skipped.txt", "queries")
    parts = [(tmp_path / f"q.{k}.csv", tmp_path / f"q_skipped.{k}.txt") for k in range(shards)]
    for k, (m, sk) in enumerate(parts):
        list_images(folder, m, sk, "queries", (k, shards))
    info = join_listings([m for m, _ in parts], [sk for _, sk in parts], tmp_path / "q.csv", tmp_path / "q_skipped.txt", folder, "queries")
    one, joined = (pd.read_csv(tmp_path / f, encoding_errors=CSV_ERRORS) for f in ("one.csv", "q.csv"))
    pd.testing.assert_frame_equal(joined, one)
    lines = [(tmp_path / f).read_text(encoding="utf-8").splitlines() for f in ("one_skipped.txt", "q_skipped.txt")]
    assert sorted(lines[1]) == sorted(lines[0]) and info == {"images": len(one), "skipped": len(lines[0])}
    empties = [m for m, _ in parts if pd.read_csv(m, encoding_errors=CSV_ERRORS).empty]
    if shards == 40:  # more shards than entries: the empty ones alone are an empty listing, named as one
        with pytest.raises(PipelineError, match=r"no usable image under .*crops"):
            join_listings(empties, [], tmp_path / "e.csv", tmp_path / "e.txt", folder, "queries")


def test_a_folder_without_images_names_where_the_reasons_are(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.txt").write_text("x")
    with pytest.raises(PipelineError, match=r"no usable image under .*1 other entries, listed in .*skipped.txt"):
        list_images(tmp_path / "f", tmp_path / "q.csv", tmp_path / "skipped.txt", "queries")


def _writer(root, offset):
    keys = [f"{offset + i:064x}" for i in range(50)]
    FeatureStore.create(root, 4, 2, 3, drop_unreadable=True).append(
        keys, np.full((50, 4), offset, np.float32), np.full((50, 2, 3), offset, np.float32)
    )


def test_concurrent_writers_lose_nothing_and_a_corrupt_part_is_dropped(tmp_path, caplog):
    root = tmp_path / "cache" / "model"
    procs = [mp.get_context("fork").Process(target=_writer, args=(root, k * 1000)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    store = FeatureStore(root, drop_unreadable=True)
    index = key_rows(store)
    assert len(index) == 200 and len(list(root.glob("part-*"))) == 4 and not list(root.glob(".tmp-*"))
    keys = [f"{3000 + 7:064x}", f"{1000:064x}", f"{3000 + 7:064x}"]
    g, loc = (store.gather(which, [index[k] for k in keys]) for which in ("global", "local"))
    assert list(g[:, 0]) == [3000, 1000, 3000] and loc.shape == (3, 2, 3)
    # a truncated part: named, removed, the others still served
    broken = sorted(root.glob("part-*"))[1]
    data = (broken / "local.npy").read_bytes()
    (broken / "local.npy").write_bytes(data[: len(data) // 2])
    index = key_rows(FeatureStore(root, drop_unreadable=True))
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


@pytest.mark.parametrize("variant,shortlist", [("global", None), ("global_local", 10), ("global_local", None)])
def test_search_over_store_views_matches_the_in_memory_ranking(tmp_path, variant, shortlist):
    """The same features as feature files, as views of a store (rows in another order, one image
    listed twice) and as the evaluation gallery's store: the same matches, and the same as ranking the
    full distance matrix."""
    import pandas as pd

    from alignedreid.evaluation.stored import write_evaluation_store
    from alignedreid.features.files import load_features, save_features
    from alignedreid.search.cache import write_view
    from alignedreid.search.ranking import search, search_distances

    rng = np.random.default_rng(4)
    g, loc = rng.normal(size=(30, 16)).astype(np.float32), rng.normal(size=(30, 3, 4)).astype(np.float32)
    paths = [f"g{i}.jpg" for i in range(30)]
    save_features(tmp_path / "g.npz", g, loc, np.zeros(30, int), np.zeros(30, int), paths)
    save_features(tmp_path / "q.npz", g[:5] + 0.1, loc[:5], np.zeros(5, int), np.zeros(5, int), [f"q{i}.jpg" for i in range(5)])
    store = FeatureStore.create(tmp_path / "cache" / "m", 16, 3, 4)
    perm = rng.permutation(30)
    store.append([f"{i:064x}" for i in perm[:12]], g[perm[:12]], loc[perm[:12]])  # two parts, shuffled
    store.append([f"{i:064x}" for i in perm[12:]], g[perm[12:]], loc[perm[12:]])
    row_of = {int(k): r for r, k in enumerate(perm)}
    df = pd.DataFrame({"path": paths, "pid": 0, "camid": 0})
    write_view(tmp_path / "views" / "g.view.npz", store.root, [row_of[i] for i in range(30)], df.pid, df.camid, df.path)
    qstore = FeatureStore.create(tmp_path / "cache" / "q", 16, 3, 4)
    qstore.append([f"q{i}" for i in range(5)], g[:5] + 0.1, loc[:5])
    qdf = pd.DataFrame({"path": [f"q{i}.jpg" for i in range(5)] + ["q0.jpg"], "pid": 0, "camid": 0})
    write_view(tmp_path / "views" / "q.view.npz", qstore.root, [0, 1, 2, 3, 4, 0], qdf.pid, qdf.camid, qdf.path)
    verification = {"variant": variant, "threshold": 1.0}
    by_file, _ = search(tmp_path / "q.npz", tmp_path / "g.npz", verification, tmp_path / "a.csv", top_k=6, shortlist=shortlist)
    by_view, n = search(tmp_path / "views" / "q.view.npz", tmp_path / "views" / "g.view.npz", verification, tmp_path / "b.csv", 6, shortlist)
    assert n == 30
    pd.testing.assert_frame_equal(by_view.iloc[: len(by_file)].reset_index(drop=True), by_file, atol=1e-5)
    write_evaluation_store(tmp_path / "g.npz", tmp_path / "g.store", "float32")  # the evaluation gallery: searched from its store
    by_store, n = search(tmp_path / "q.npz", tmp_path / "g.store", verification, tmp_path / "c.csv", top_k=6, shortlist=shortlist)
    assert n == 30
    pd.testing.assert_frame_equal(by_store, by_file, atol=1e-5)
    pd.testing.assert_frame_equal(  # the query listed twice: the same answer twice
        by_view.iloc[len(by_file) :].reset_index(drop=True).drop(columns="query"), by_file.iloc[:6].drop(columns="query"), atol=1e-5
    )
    dist = search_distances(load_features(tmp_path / "q.npz"), load_features(tmp_path / "g.npz"), variant, shortlist)
    want = np.lexsort((np.broadcast_to(np.arange(30), dist.shape), dist), axis=1)[:, :6]
    assert by_file.gallery.tolist() == [paths[j] for j in want.ravel()]


def test_shard_views_join_into_the_view_of_every_row(tmp_path):
    """search_view: the shards' views, in order, are the one view of the whole folder; views of two
    stores (another model) are refused, naming the files."""
    from alignedreid.search.cache import concat_views, load_view, write_view

    rng = np.random.default_rng(7)
    g, loc = rng.normal(size=(9, 6)).astype(np.float32), rng.normal(size=(9, 2, 3)).astype(np.float32)
    store = FeatureStore.create(tmp_path / "cache" / "m", 6, 2, 3)
    store.append([f"k{i}" for i in range(9)], g, loc)
    df = pd.DataFrame({"path": [f"img {i}.jpg" for i in range(9)], "pid": range(9), "camid": 1})
    order = [4, 0, 8, 1, 1, 7, 2, 3, 5]
    shards = [order[:4], order[4:8], [], order[8:]]  # an empty shard too (more shards than batches)
    views = []
    for n, rows in enumerate(shards):
        views.append(tmp_path / f"q.{n}.view.npz")
        write_view(views[-1], store.root, rows, df.pid[rows], df.camid[rows], df.path[rows])
    assert concat_views(views, tmp_path / "q.view.npz") == 9
    whole = load_view(tmp_path / "q.view.npz")
    assert whole.rows.tolist() == order and whole.path.tolist() == [f"img {i}.jpg" for i in order]
    np.testing.assert_array_equal(whole.features().local, loc[order])
    other = FeatureStore.create(tmp_path / "cache" / "other", 6, 2, 3)
    write_view(tmp_path / "x.view.npz", other.root, [], [], [], [])
    with pytest.raises(PipelineError, match="x.view.npz: shard views of 2 different feature stores"):
        concat_views([views[0], tmp_path / "x.view.npz"], tmp_path / "bad.view.npz")
    assert not (tmp_path / "bad.view.npz").exists()
