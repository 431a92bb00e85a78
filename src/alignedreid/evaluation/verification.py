"""Verification metrics: does a distance say "same person"? Over the protocol's valid query x gallery
pairs (junk and same-identity same-camera items removed, as in ranking), positives are pairs of the
same identity and negatives pairs of different ones (distractors included).

- ``tpr_at_fpr``: the largest threshold t whose false-positive rate (negatives with distance < t)
  is at most the target, and the true-positive rate there (positives with distance < t). A pair is
  accepted when its distance is strictly below t, so tied distances never push the FPR past the target.
- ``camera_pair_matrix``: rank-1 and mAP of the queries of camera a against the gallery items of
  camera b only, for every pair (a, b) (the diagonal has no valid match: same-camera matches are
  excluded by the protocol).

Memory is bounded: pairs are visited in row blocks, keeping only the positives and the smallest
negatives that the largest FPR asked for can reach (at MSMT17 scale, 958 M pairs, 1 % is 9.6 M).
"""

from __future__ import annotations

import numpy as np

from ..foundation.contracts import JUNK_PID
from .ranking import rank_details

FPRS = (1e-2, 1e-3, 1e-4)


def pair_distances(dist, q_pids, g_pids, q_camids, g_camids, keep_negatives: int, block: int = 256):
    """(positive distances, the ``keep_negatives`` smallest negative distances sorted, the number of negatives)."""
    dist = np.asarray(dist)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    pos, neg, n_neg = [], np.empty(0, dtype=np.float64), 0
    g_junk = g_pids == JUNK_PID
    for s in range(0, len(dist), block):
        d = dist[s : s + block]
        same_id = q_pids[s : s + block, None] == g_pids[None]
        same_cam = q_camids[s : s + block, None] == g_camids[None]
        valid = ~g_junk[None] & ~(same_id & same_cam)
        valid &= (q_pids[s : s + block] != JUNK_PID)[:, None]
        pos.append(d[valid & same_id].astype(np.float64))
        nb = d[valid & ~same_id].astype(np.float64)
        n_neg += len(nb)
        if keep_negatives:
            merged = np.concatenate([neg, nb])
            if len(merged) > keep_negatives:
                merged = np.partition(merged, keep_negatives - 1)[:keep_negatives]
            neg = merged
    return np.concatenate(pos) if pos else np.empty(0), np.sort(neg), n_neg


def tpr_at_fpr(pos: np.ndarray, smallest_neg: np.ndarray, n_neg: int, fpr: float) -> tuple[float, float]:
    """(TPR, threshold) at the largest threshold t with #(negatives < t) / n_neg <= fpr; accept d < t."""
    k = int(np.floor(fpr * n_neg + 1e-9))  # at most k negatives may be accepted
    if k >= n_neg:
        threshold = float("inf")
    elif k < len(smallest_neg):
        threshold = float(smallest_neg[k])  # the (k+1)-th smallest negative: everything below it is accepted
    else:
        raise ValueError(f"tpr_at_fpr: {len(smallest_neg)} smallest negatives kept, {k + 1} needed for FPR {fpr:g}")
    tpr = float((pos < threshold).mean()) if len(pos) else float("nan")
    return tpr, threshold


def verification_metrics(dist, q_pids, g_pids, q_camids, g_camids, target_fpr: float, fprs=FPRS) -> dict:
    """TPR at each FPR of ``fprs`` and the threshold at ``target_fpr`` (the one search decides with)."""
    n_pairs = int(np.asarray(dist).size)
    keep = int(np.ceil(max(*fprs, target_fpr) * n_pairs)) + 1
    pos, neg, n_neg = pair_distances(dist, q_pids, g_pids, q_camids, g_camids, keep)
    out = {"num_positive_pairs": int(len(pos)), "num_negative_pairs": int(n_neg), "tpr_at_fpr": {}}
    for f in fprs:
        tpr, thr = tpr_at_fpr(pos, neg, n_neg, f)
        out["tpr_at_fpr"][f"{f:g}"] = {"tpr": tpr, "threshold": thr}
    tpr, thr = tpr_at_fpr(pos, neg, n_neg, target_fpr)
    out.update({"target_fpr": target_fpr, "threshold": thr, "tpr": tpr})
    return out


def distance_histograms(dist, q_pids, g_pids, q_camids, g_camids, bins: int = 60, max_negatives: int = 2_000_000, seed: int = 0) -> dict:
    """Histograms (shared bin edges) of positive and negative pair distances; negatives subsampled past ``max_negatives``."""
    pos, _, _ = pair_distances(dist, q_pids, g_pids, q_camids, g_camids, 0)
    rng = np.random.default_rng(seed)
    dist = np.asarray(dist)
    rows = np.sort(rng.choice(len(dist), min(len(dist), max(1, max_negatives // max(1, dist.shape[1]))), replace=False))
    g_pids = np.asarray(g_pids)
    neg = []
    for r in rows:
        ok = (g_pids != JUNK_PID) & (g_pids != np.asarray(q_pids)[r])
        neg.append(dist[r][ok])
    neg = np.concatenate(neg) if neg else np.empty(0)
    hi = float(max(pos.max() if len(pos) else 0, neg.max() if len(neg) else 0, 1e-6))
    edges = np.linspace(0.0, hi, bins + 1)
    return {"edges": edges.tolist(), "positive": np.histogram(pos, edges)[0].tolist(), "negative": np.histogram(neg, edges)[0].tolist()}


def camera_pair_matrix(dist, q_pids, g_pids, q_camids, g_camids) -> dict:
    """{'cameras': [...], 'rank1': [[...]], 'mAP': [[...]]} per (query camera, gallery camera); None where no query has a match."""
    dist = np.asarray(dist)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    cams = sorted(set(q_camids.tolist()) | set(g_camids.tolist()))
    r1 = [[None] * len(cams) for _ in cams]
    m = [[None] * len(cams) for _ in cams]
    for a, ca in enumerate(cams):
        qi = np.flatnonzero(q_camids == ca)
        for b, cb in enumerate(cams):
            gi = np.flatnonzero(g_camids == cb)
            if not len(qi) or not len(gi):
                continue
            sub = np.ascontiguousarray(dist[np.ix_(qi, gi)])
            try:
                det = rank_details(sub, q_pids[qi], g_pids[gi], q_camids[qi], g_camids[gi], max_rank=1)
            except ValueError:  # no query of camera a has a valid match in camera b
                continue
            r1[a][b], m[a][b] = float(det.cmc[0]), det.mAP
    return {"cameras": [int(c) for c in cams], "rank1": r1, "mAP": m}
