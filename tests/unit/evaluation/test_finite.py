"""No NaN or inf gets past a stage: feature files refuse them when written and when read, evaluate
refuses non-finite distances, parity holds low-precision features to infer.min_cosine."""

import numpy as np
import pytest

from alignedreid.evaluation.run import rank_variant
from alignedreid.features.files import FINITE_CHECK_ROWS, NonFiniteFeatures, load_features, non_finite_rows, save_features
from alignedreid.features.parity import ParityError, check_low_precision, parity


def _features(n=6, s=2, d=4, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, 8)).astype(np.float32)
    l = rng.normal(size=(n, s, d)).astype(np.float32)
    l /= np.linalg.norm(l, axis=2, keepdims=True)
    return g, l, np.arange(n) % 3 + 1, np.arange(n) % 2, [f"img_{i}.jpg" for i in range(n)]


def test_non_finite_features_are_refused_before_anything_is_written(tmp_path):
    g, l, pid, cam, paths = _features()
    l[4, 1, 2] = np.nan
    l[5, 0, 0] = np.inf
    out = tmp_path / "query.npz"
    with pytest.raises(NonFiniteFeatures, match=r"query.npz \(model m.xml\): 2 of 6 images have non-finite features .*img_4.jpg, img_5.jpg"):
        save_features(out, g, l, pid, cam, paths, model="m.xml")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_non_finite_file_written_elsewhere_is_refused_when_read(tmp_path):
    g, l, pid, cam, paths = _features()
    g[1, 3] = -np.inf
    f = tmp_path / "old.npz"
    np.savez(f, **{"global": g, "local": l, "pid": pid, "camid": cam, "path": np.array(paths)})
    with pytest.raises(NonFiniteFeatures, match=r"old.npz: 1 of 6 images .*global: 0 NaN, 1 inf.*img_1.jpg"):
        load_features(f)
    g[1, 3] = 0
    np.savez(f, **{"global": g, "local": l, "pid": pid, "camid": cam, "path": np.array(paths)})
    assert len(load_features(f)) == 6


def test_the_check_runs_in_blocks_and_finds_a_row_past_the_first():
    g = np.zeros((FINITE_CHECK_ROWS + 3, 2), np.float32)
    l = np.zeros((FINITE_CHECK_ROWS + 3, 1, 2), np.float32)
    l[FINITE_CHECK_ROWS + 1, 0, 1] = np.nan
    assert list(np.flatnonzero(non_finite_rows(g, l))) == [FINITE_CHECK_ROWS + 1]


def test_evaluate_refuses_non_finite_distances(tmp_path):
    g, l, pid, cam, paths = _features()
    save_features(tmp_path / "q.npz", g, l, pid, cam, paths)
    q = load_features(tmp_path / "q.npz")
    dist = np.abs(np.random.default_rng(1).normal(size=(6, 6))).astype(np.float32)
    rank_variant(dist, q, q, max_rank=3)
    dist[2, 4] = np.nan
    with pytest.raises(Exception, match=r"evaluate: the global_local distance is NaN or inf for 1 queries \(e.g. img_2.jpg\)"):
        rank_variant(dist, q, q, max_rank=3, name="global_local")


def test_low_precision_features_are_held_to_the_cosine_bound(tmp_path):
    g, l, pid, cam, paths = _features()
    save_features(tmp_path / "ref.npz", g, l, pid, cam, paths)
    close_l = l + 0.01 * np.random.default_rng(2).normal(size=l.shape).astype(np.float32)
    close_l /= np.linalg.norm(close_l, axis=2, keepdims=True)
    save_features(tmp_path / "int8.npz", g * 1.01, close_l, pid, cam, paths)
    result = parity([tmp_path / "int8.npz"], [tmp_path / "ref.npz"])
    assert 0.99 < result["local_min_cosine"] <= 1.0 and result["global_min_cosine"] > 0.999
    check_low_precision(result, "int8", 0.95, ["int8.npz"])
    stripes = l.shape[1]
    one = l.copy()
    one[3, 1] = -one[3, 1]  # one stripe of one image turned around: the image's mean falls by 2 / stripes
    save_features(tmp_path / "one.npz", g, one, pid, cam, paths)
    result = parity([tmp_path / "one.npz"], [tmp_path / "ref.npz"])
    assert result["stripe_min_cosine"] == pytest.approx(-1.0, abs=1e-5)
    assert result["local_min_cosine"] == pytest.approx(1.0 - 2.0 / stripes, abs=1e-5)
    check_low_precision(result, "int8", 1.0 - 2.0 / stripes - 0.01, ["one.npz"])  # a per-image bound it meets
    far = l.copy()
    far[3] = -far[3]  # a whole image's stripes turned around
    save_features(tmp_path / "far.npz", g, far, pid, cam, paths)
    result = parity([tmp_path / "far.npz"], [tmp_path / "ref.npz"])
    with pytest.raises(
        ParityError,
        match=r"infer.precision int8: .*infer.min_cosine 0.95 allows: worst cosine global 1.0000, local -1.0000 \(local: an image's mean .*worst single stripe -1.0000\) over 6",
    ):
        check_low_precision(result, "int8", 0.95, ["far.npz"])


def test_half_precision_stripes_refuse_non_finite_values_naming_the_images(tmp_path, monkeypatch):
    from alignedreid.evaluation import stripes

    monkeypatch.setattr(stripes, "CHUNK_ROWS", 4)  # the bad rows lie in the second chunk
    g, l, pid, cam, paths = _features()
    l[5, 1, 0] = np.inf
    np.savez(tmp_path / "q.npz", **{"global": g, "local": l, "pid": pid, "camid": cam, "path": np.array(paths)})
    with pytest.raises(NonFiniteFeatures, match=r"q.npz: 1 of 6 images have non-finite stripes: img_5.jpg"):
        stripes.load_half_stripes(tmp_path / "q.npz", load_features(tmp_path / "q.npz", local=False))
    l[5, 1, 0] = 3.0
    np.savez(tmp_path / "q.npz", **{"global": g, "local": l, "pid": pid, "camid": cam, "path": np.array(paths)})
    half = stripes.load_half_stripes(tmp_path / "q.npz", load_features(tmp_path / "q.npz", local=False)).local
    assert half.dtype == np.float16 and half.shape == l.shape
    np.testing.assert_allclose(np.linalg.norm(half.astype(np.float32), axis=2), 1.0, atol=2e-3)  # unit length before rounding
