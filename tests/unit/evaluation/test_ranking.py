"""CMC / mAP / mINP (evaluation/ranking.py) against the straightforward reference, and the top-k kernel (evaluation/topk.py)."""

import numpy as np
import pytest

from alignedreid.evaluation import rank
from alignedreid.evaluation.ranking import rank_details
from alignedreid.evaluation.reference import ref_rank
from alignedreid.evaluation.topk import smallest_k


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
