"""CMC/mAP as computed before the evaluation-speed work (a stable argsort of every gallery row),
kept only so that bench/evaluation.py can time it beside the current kernel in the same run."""

from __future__ import annotations

import numpy as np

from alignedreid.evaluation.ranking import _checked
from alignedreid.foundation.contracts import JUNK_PID


def previous_rank_details(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50, chunk: int = 256):
    distmat, q_pids, g_pids, q_camids, g_camids = _checked(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    num_q = distmat.shape[0]
    idx_all, first_all, ap_all = [], [], []
    for s in range(0, num_q, chunk):
        e = min(s + chunk, num_q)
        order = np.argsort(distmat[s:e], axis=1, kind="stable")
        gp, gc = g_pids[order], g_camids[order]
        qp, qc = q_pids[s:e, None], q_camids[s:e, None]
        valid = (gp != JUNK_PID) & ~((gp == qp) & (gc == qc))
        match = (gp == qp) & valid
        n_match = match.sum(1)
        keep = n_match > 0
        if not keep.any():
            continue
        valid, match, n_match = valid[keep], match[keep], n_match[keep]
        pos = np.cumsum(valid, axis=1)  # 1-based position among valid items
        hits = np.cumsum(match, axis=1)
        first = np.argmax(match, axis=1)
        first_all.append(pos[np.arange(len(first)), first] - 1)
        precision = np.where(match, hits / np.maximum(pos, 1), 0.0)
        ap_all.append(precision.sum(1) / n_match)
        idx_all.append(np.arange(s, e)[keep])
    if not idx_all:
        raise ValueError("rank: no query has a valid gallery match (all were same-camera, junk or absent)")
    first = np.concatenate(first_all)
    ap = np.concatenate(ap_all)
    cmc = (first[:, None] <= np.arange(max_rank)[None]).mean(0).astype(np.float64)
    return np.concatenate(idx_all), first, ap, cmc, float(ap.mean())
