"""k-reciprocal re-ranking (evaluation/rerank.py): matrix and streamed forms against the published algorithm."""

import numpy as np
import pytest

from alignedreid.evaluation import re_ranking
from alignedreid.evaluation.reference import ref_re_ranking


def _sym_dists(rng, n, d=6, clusters=5):
    centres = rng.normal(size=(clusters, d))
    pts = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, d))
    return np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))


@pytest.mark.parametrize("nq,ng,k1,k2,lam", [(6, 25, 20, 6, 0.3), (10, 40, 5, 3, 0.5), (4, 30, 8, 1, 0.0), (12, 12, 3, 2, 1.0)])
def test_re_ranking_matches_reference(nq, ng, k1, k2, lam):
    rng = np.random.default_rng(nq + ng + k1)
    full = _sym_dists(rng, nq + ng)
    q_g, q_q, g_g = full[:nq, nq:], full[:nq, :nq], full[nq:, nq:]
    got = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam)
    want = ref_re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lam=lam)
    assert got.shape == (nq, ng) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_re_ranking_small_chunks_equal_large():
    rng = np.random.default_rng(3)
    full = _sym_dists(rng, 70).astype(np.float32)
    args = (full[:20, 20:], full[:20, :20], full[20:, 20:])
    np.testing.assert_allclose(re_ranking(*args, chunk=7), re_ranking(*args, chunk=1000), rtol=0, atol=0)


def test_re_ranking_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shapes do not fit"):
        re_ranking(np.zeros((3, 4)), np.zeros((3, 3)), np.zeros((5, 5)))


def test_re_ranking_from_features_equals_matrix_api():
    from alignedreid.evaluation.distance import global_distance
    from alignedreid.evaluation.rerank import re_ranking_features

    rng = np.random.default_rng(11)
    ids = rng.integers(0, 15, 260)
    f = rng.standard_normal((15, 32)).astype(np.float32)[ids] + rng.standard_normal((260, 32)).astype(np.float32)
    q, g = f[:60], f[60:]
    dense = re_ranking(np.sqrt(global_distance(q, g)), np.sqrt(global_distance(q, q)), np.sqrt(global_distance(g, g)), 8, 3, 0.3)
    streamed = re_ranking_features(q, g, 8, 3, 0.3, chunk=37)  # blocks that do not divide q+g
    np.testing.assert_allclose(streamed, dense, atol=1e-5)
    with pytest.raises(ValueError, match=r"need \[q, D\] and \[g, D\] features"):
        re_ranking_features(q, g[:, :5])
