import numpy as np
import pytest

from alignedreid.evaluation import local_distance, rank, re_ranking
from alignedreid.evaluation.ranking import rank_details
from alignedreid.evaluation.reference import ref_local_distance, ref_rank, ref_re_ranking
from alignedreid.evaluation.topk import smallest_k
from tests.conftest import eval_section


def _ids(rng, nq, ng, n_ids=6, n_cams=3):
    return (rng.integers(1, n_ids + 1, nq), rng.integers(-1, n_ids + 1, ng), rng.integers(0, n_cams, nq), rng.integers(0, n_cams, ng))


@pytest.mark.parametrize("seed,nq,ng,max_rank", [(0, 5, 30, 10), (1, 40, 200, 50), (2, 13, 7, 20)])
def test_rank_matches_reference(seed, nq, ng, max_rank):
    rng = np.random.default_rng(seed)
    q_pids, g_pids, q_cams, g_cams = _ids(rng, nq, ng)
    g_pids[:3] = q_pids[0]  # make sure at least one query has matches
    g_cams[:3] = (q_cams[0] + 1) % 3
    dist = rng.random((nq, ng)).astype(np.float32)
    cmc, mAP = rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank)
    rcmc, rmap = ref_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank)
    assert cmc.shape == (max_rank,)
    np.testing.assert_allclose(cmc, rcmc, atol=1e-12)
    assert mAP == pytest.approx(rmap, abs=1e-12)
    assert 0 <= mAP <= 1 and np.all(np.diff(cmc) >= 0)


def test_rank_protocol_edge_cases():
    # query 0: only same-camera matches -> skipped; query 1: one valid match at rank 3 behind junk
    q_pids, q_cams = np.array([1, 2]), np.array([0, 0])
    g_pids = np.array([1, -1, 3, 2, 2, 0])
    g_cams = np.array([0, 1, 1, 0, 2, 1])
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.9, 0.1, 0.2, 0.05, 0.4, 0.3]])
    cmc, mAP = rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=4)
    # for query 1 the valid order is: 3 (0.2), 0 (0.3, distractor), 2 (0.4) -> first match at rank 3
    np.testing.assert_allclose(cmc, [0, 0, 1, 1])
    assert mAP == pytest.approx(1 / 3)


def test_rank_ties_and_no_valid_query():
    q_pids, q_cams = np.array([1]), np.array([0])
    g_pids, g_cams = np.array([2, 1, 1]), np.array([1, 1, 2])
    dist = np.zeros((1, 3))  # all tied: stable order keeps gallery order
    cmc, mAP = rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=3)
    np.testing.assert_allclose(cmc, [0, 1, 1])
    assert mAP == pytest.approx((1 / 2 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="no query has a valid gallery match"):
        rank(dist, q_pids, np.array([-1, -1, -1]), q_cams, g_cams)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_with_many_ties_matches_reference(dtype):
    # integer distances: most gallery items tie with some match; the kernel's binary search must
    # order them by gallery index exactly as a stable full sort does
    rng = np.random.default_rng(7)
    for _ in range(20):
        nq, ng = int(rng.integers(1, 25)), int(rng.integers(5, 150))
        q_pids, g_pids, q_cams, g_cams = _ids(rng, nq, ng)
        g_pids[0], g_cams[0] = q_pids[0], (q_cams[0] + 1) % 3
        dist = rng.integers(0, 4, (nq, ng)).astype(dtype)
        det = rank_details(dist, q_pids, g_pids, q_cams, g_cams, max_rank=15)
        rcmc, rmap = ref_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=15)
        np.testing.assert_allclose(det.cmc, rcmc, atol=1e-12)
        assert det.mAP == pytest.approx(rmap, abs=1e-12)


def test_smallest_k_is_the_head_of_a_stable_sort():
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 6, (40, 300)).astype(np.float32)
    np.testing.assert_array_equal(smallest_k(rows, 10), np.argsort(rows, axis=1, kind="stable")[:, :10])
    assert smallest_k(rows[:, :4], 10).shape == (40, 4)


@pytest.mark.parametrize("M,N,m,n,d", [(5, 7, 8, 8, 16), (3, 4, 4, 6, 5), (1, 1, 1, 1, 3), (6, 9, 7, 3, 32)])
def test_local_distance_matches_reference(M, N, m, n, d):
    rng = np.random.default_rng(M * 100 + N)
    x = rng.normal(size=(M, m, d)).astype(np.float32)
    y = rng.normal(size=(N, n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    y /= np.linalg.norm(y, axis=2, keepdims=True)
    got = local_distance(x, y)
    assert got.dtype == np.float32 and got.shape == (M, N)
    np.testing.assert_allclose(got, ref_local_distance(x, y), rtol=1e-5, atol=1e-5)


def test_local_distance_blocks_and_symmetry():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(23, 8, 12)).astype(np.float32)
    full = local_distance(x, x.copy(), block_elems=1 << 30)
    tiny_blocks_sym = local_distance(x, x, block_elems=200)  # many blocks, mirrored
    tiny_blocks = local_distance(x, x.copy(), block_elems=200, symmetric=False)
    # Off the diagonal every blocking gives the same numbers. On it (a stripe against itself) the
    # squared distance is |x|^2 + |x|^2 - 2 x.x, a cancellation whose float32 rounding depends on
    # how BLAS splits the product: sqrt(eps32 * 2|x|^2) ~ 2e-3 here, so the diagonal gets that tolerance.
    off = ~np.eye(len(x), dtype=bool)
    for got in (tiny_blocks_sym, tiny_blocks, full.T):
        np.testing.assert_allclose(got[off], full[off], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.diag(got), np.diag(full), atol=5e-3)


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


@pytest.mark.parametrize("scale_row", [None, 3])
def test_local_distance_of_normalised_stripes_matches_reference(scale_row):
    """L2-normalised stripes (the feature-file contract) take the polynomial squashing path; a row
    scaled away from unit length takes the exact one. Both must equal the reference."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((9, 8, 32)).astype(np.float32)
    y = rng.standard_normal((14, 8, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    y /= np.linalg.norm(y, axis=2, keepdims=True)
    y[:3] = 0.6 * y[:3] + 0.4 * x[:3]  # some close pairs (small distances)
    y[:3] /= np.linalg.norm(y[:3], axis=2, keepdims=True)
    if scale_row is not None:
        x[scale_row] *= 4.0
    np.testing.assert_allclose(local_distance(x, y), ref_local_distance(x, y), rtol=1e-5, atol=2e-6)
    off = ~np.eye(len(x), dtype=bool)  # the diagonal's float32 cancellation: see the test above
    np.testing.assert_allclose(local_distance(x, x)[off], ref_local_distance(x, x)[off], rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(np.diag(local_distance(x, x)), np.diag(ref_local_distance(x, x)), atol=5e-3)


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


def test_variant_plan_by_size():
    from alignedreid.errors import PipelineError
    from alignedreid.evaluation.run import plan_variants

    all4 = ["global", "global_local", "global_rerank", "global_local_rerank"]
    assert plan_variants(3368, 19732, all4, True, 8.0, None, 20) == (all4, False)
    assert plan_variants(3368, 19732, all4, False, 8.0, None, 20) == (["global", "global_local"], False)
    # MSMT17: the 82,161^2 gallery matrix is 25.1 GB; global re-ranking streams, global+local is refused
    assert plan_variants(11659, 82161, ["global", "global_rerank"], True, 8.0, None, 20) == (["global", "global_rerank"], True)
    with pytest.raises(
        PipelineError, match=r"global_local_rerank needs the 82161 x 82161 .*25.1 GB.*evaluation.matrix_budget_gb \(8\).*evaluation.shortlist"
    ):
        plan_variants(11659, 82161, all4, True, 8.0, None, 20)
    assert plan_variants(11659, 82161, all4, True, 8.0, 200, 20) == (all4, True)  # on shortlists every variant runs


def test_evaluate_streams_global_re_ranking_past_the_matrix_budget():
    from alignedreid.errors import PipelineError
    from alignedreid.evaluation.features_io import FeatureSet
    from alignedreid.evaluation.run import evaluate_features

    rng = np.random.default_rng(4)

    def fs(n, pids):
        loc = rng.standard_normal((n, 4, 8)).astype(np.float32)
        cams = (np.arange(n) // 6) % 3
        return FeatureSet(rng.standard_normal((n, 16)).astype(np.float32), loc, pids, cams, np.array([f"{i}.jpg" for i in range(n)]), np.arange(n))

    q, g = fs(12, np.arange(12) % 6 + 1), fs(60, np.arange(60) % 6 + 1)
    variants = ["global", "global_rerank"]
    dense, _, t_dense = evaluate_features(q, g, eval_section(5, 2, variants=variants), verification=False)
    streamed, _, t_streamed = evaluate_features(q, g, eval_section(5, 2, variants=variants, matrix_budget_gb=1e-9), verification=False)
    assert "compute + rank global_rerank" in t_streamed and "re-rank global" in t_dense  # blocks ranked as they come
    assert streamed["global_rerank"]["mAP"] == pytest.approx(dense["global_rerank"]["mAP"], abs=1e-6)
    with pytest.raises(PipelineError, match="global_local_rerank needs the 60 x 60"):
        evaluate_features(q, g, eval_section(5, 2, matrix_budget_gb=1e-9), verification=False)
