"""Straightforward implementations of the published evaluation algorithms: slow, written for
clarity, used by the tests and bench/evaluation.py to check the fast ones in this package."""

from __future__ import annotations

import numpy as np

from ..foundation.contracts import JUNK_PID, RERANK_K1, RERANK_K2, RERANK_LAMBDA


def ref_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """Market-1501 CMC and mAP, one query at a time."""
    cmcs, aps = [], []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        kept = [g for g in order if g_pids[g] != JUNK_PID and not (g_pids[g] == q_pids[i] and g_camids[g] == q_camids[i])]
        rel = np.array([g_pids[g] == q_pids[i] for g in kept], dtype=float)
        if rel.sum() == 0:
            continue
        curve = np.zeros(max_rank)
        first = int(np.argmax(rel))
        curve[first:] = 1.0 if first < max_rank else 0.0
        cmcs.append(curve)
        precisions = [rel[: k + 1].sum() / (k + 1) for k in range(len(rel)) if rel[k]]
        aps.append(np.mean(precisions))
    return np.mean(cmcs, axis=0), float(np.mean(aps))


def ref_local_distance(x, y):
    """DMLI distance of every pair, float64, the path recursion over whole stripe planes."""
    M, m, d = x.shape
    N, n, _ = y.shape
    xf, yf = x.reshape(-1, d).astype(np.float64), y.reshape(-1, d).astype(np.float64)
    sq = (xf**2).sum(1)[:, None] + (yf**2).sum(1)[None] - 2 * xf @ yf.T
    dist = np.sqrt(np.clip(sq, 0, None))
    dist = (np.exp(dist) - 1.0) / (np.exp(dist) + 1.0)
    dist = dist.reshape(M, m, N, n).transpose(1, 3, 0, 2)
    acc = np.zeros_like(dist)
    for a in range(m):
        for b in range(n):
            if a == 0 and b == 0:
                acc[a, b] = dist[a, b]
            elif a == 0:
                acc[a, b] = acc[a, b - 1] + dist[a, b]
            elif b == 0:
                acc[a, b] = acc[a - 1, b] + dist[a, b]
            else:
                acc[a, b] = np.minimum(acc[a - 1, b], acc[a, b - 1]) + dist[a, b]
    return acc[-1, -1]


def ref_re_ranking(q_g, q_q, g_g, k1=RERANK_K1, k2=RERANK_K2, lam=RERANK_LAMBDA):
    """k-reciprocal re-ranking step by step as published (dense matrices, Python loops)."""
    nq = q_g.shape[0]
    orig = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32) ** 2
    orig = (orig / orig.max(axis=0)).T
    n = len(orig)
    V = np.zeros_like(orig)
    ranking = np.argsort(orig, axis=1, kind="stable").astype(np.int32)  # stable: ties by index, as ours
    kh = int(np.around(k1 / 2.0))

    def recip(i, k):
        fwd = ranking[i, : k + 1]
        return fwd[np.where(ranking[fwd, : k + 1] == i)[0]]

    for i in range(n):
        r = recip(i, k1)
        exp = r
        for c in r:
            rc = recip(c, kh)
            if len(np.intersect1d(rc, r)) > 2.0 / 3.0 * len(rc):
                exp = np.append(exp, rc)
        exp = np.unique(exp)
        w = np.exp(-orig[i, exp])
        V[i, exp] = w / w.sum()
    V = np.stack([V[ranking[i, :k2]].mean(0) for i in range(n)])
    inv = [np.where(V[:, j] != 0)[0] for j in range(n)]
    jac = np.zeros((nq, n), np.float32)
    for i in range(nq):
        tmp = np.zeros(n, np.float32)
        nz = np.where(V[i] != 0)[0]
        for j in nz:
            tmp[inv[j]] += np.minimum(V[i, j], V[inv[j], j])
        jac[i] = 1 - tmp / (2 - tmp)
    return (jac * (1 - lam) + orig[:nq] * lam)[:, nq:]
