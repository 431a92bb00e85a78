"""Verification metrics and mINP against brute-force references, on small random data full of ties."""

import numpy as np
import pytest

from alignedreid.evaluation.ranking import rank_details
from alignedreid.evaluation.verification import camera_pair_matrix, pair_distances, tpr_at_fpr, verification_metrics


def random_protocol(seed, nq=40, ng=150, ids=8, cams=3, levels=12):
    rng = np.random.default_rng(seed)
    dist = rng.integers(0, levels, (nq, ng)).astype(np.float32)  # few distinct values: many ties
    q_pids = rng.integers(1, ids, nq)
    g_pids = rng.integers(-1, ids, ng)  # -1 junk, 0 distractor
    return dist, q_pids, g_pids, rng.integers(0, cams, nq), rng.integers(0, cams, ng)


def brute_pairs(dist, q_pids, g_pids, q_camids, g_camids):
    pos, neg = [], []
    for i in range(len(dist)):
        for j in range(dist.shape[1]):
            if g_pids[j] == -1 or (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i]):
                continue
            (pos if g_pids[j] == q_pids[i] else neg).append(float(dist[i, j]))
    return np.array(pos), np.array(neg)


def brute_tpr_at_fpr(pos, neg, fpr):
    """The best TPR over every threshold t (accept d < t) whose FPR is within the target."""
    best = (-1.0, None)
    for t in [*np.unique(np.concatenate([pos, neg])), np.inf]:
        if (neg < t).mean() <= fpr + 1e-12:
            tpr = (pos < t).mean()
            if tpr > best[0] or (tpr == best[0] and t > best[1]):
                best = (tpr, t)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fpr", [1e-1, 3e-2, 1e-2, 1e-3])
def test_tpr_at_fpr_matches_brute_force(seed, fpr):
    args = random_protocol(seed)
    pos, neg = brute_pairs(*args)
    got_pos, small_neg, n_neg = pair_distances(*args, keep_negatives=len(neg), block=7)
    assert sorted(got_pos) == sorted(pos) and n_neg == len(neg)
    tpr, thr = tpr_at_fpr(got_pos, small_neg, n_neg, fpr)
    want_tpr, _ = brute_tpr_at_fpr(pos, neg, fpr)
    assert tpr == pytest.approx(want_tpr) and (neg < thr).mean() <= fpr
    m = verification_metrics(*args, target_fpr=fpr)  # keeps only the negatives it needs
    assert m["tpr"] == pytest.approx(want_tpr) and m["threshold"] == thr
    assert m["num_positive_pairs"] == len(pos) and m["num_negative_pairs"] == len(neg)


def test_fpr_one_accepts_everything():
    args = random_protocol(3)
    pos, neg, n = pair_distances(*args, keep_negatives=10)
    assert tpr_at_fpr(pos, neg, n, 1.0) == (1.0, float("inf"))
    with pytest.raises(ValueError, match="smallest negatives kept"):
        tpr_at_fpr(pos, neg, n, 0.5)


@pytest.mark.parametrize("seed", [0, 4])
def test_minp_matches_a_full_sort(seed):
    dist, qp, gp, qc, gc = random_protocol(seed)
    det = rank_details(dist, qp, gp, qc, gc)
    want = []
    for i in det.query_index:
        valid = (gp != -1) & ~((gp == qp[i]) & (gc == qc[i]))
        order = np.argsort(dist[i][valid], kind="stable")
        match = (gp[valid] == qp[i])[order]
        last = np.flatnonzero(match)[-1]
        want.append(match.sum() / (last + 1))
    np.testing.assert_allclose(det.inp, want)
    assert det.mINP == pytest.approx(np.mean(want)) and 0 < det.mINP <= det.mAP + 1e-12


def test_camera_pair_matrix_cells_are_rank_on_the_subsets():
    dist, qp, gp, qc, gc = random_protocol(5, cams=3)
    m = camera_pair_matrix(dist, qp, gp, qc, gc)
    assert m["cameras"] == [0, 1, 2] and all(m["rank1"][c][c] is None for c in range(3))  # same camera: no valid match
    qi, gi = np.flatnonzero(qc == 0), np.flatnonzero(gc == 2)
    det = rank_details(dist[np.ix_(qi, gi)], qp[qi], gp[gi], qc[qi], gc[gi])
    assert m["mAP"][0][2] == pytest.approx(det.mAP) and m["rank1"][0][2] == pytest.approx(det.cmc[0])
