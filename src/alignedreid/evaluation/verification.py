"""Verification metrics: does a distance say "same person"? Over the protocol's valid query x gallery
pairs (junk and same-identity same-camera items removed, as in ranking), positives are pairs of the
same identity and negatives pairs of different ones (distractors included).

- ``tpr_at_fpr``: the largest threshold t whose false-positive rate (negatives with distance < t)
  is at most the target, and the true-positive rate there (positives with distance < t). A pair is
  accepted when its distance is strictly below t, so tied distances never push the FPR past the target.
- ``camera_pair_matrix``: rank-1 and mAP of the queries of camera a against the gallery items of
  camera b only, for every pair (a, b) (the diagonal has no valid match: same-camera matches are
  excluded by the protocol).

Each metric is an accumulator fed blocks of query rows (``feed``) and read at the end (``result``), so
the evaluation's streamed pass computes them without a q x g matrix; the functions taking a matrix
feed it whole. Memory is bounded: pairs are visited in row blocks, keeping only the positives and the smallest
negatives that the largest FPR asked for can reach (at MSMT17 scale, 958 M pairs, 1 % is 9.6 M).
"""

from __future__ import annotations

import numpy as np

from ..foundation.contracts import JUNK_PID
from .ranking import per_query, summary

FPRS = (1e-2, 1e-3, 1e-4)


def _valid_pairs(q_pids, g_pids, q_camids, g_camids):
    """(valid, same identity) masks of a block of query rows: the protocol's pairs (no junk on either
    side, no same-identity same-camera pair) and which of them are positives."""
    same_id = q_pids[:, None] == g_pids[None]
    valid = ~(same_id & (q_camids[:, None] == g_camids[None]))
    valid &= (g_pids != JUNK_PID)[None]
    valid &= (q_pids != JUNK_PID)[:, None]
    return valid, same_id


class PairDistances:
    """Positive pair distances and the ``keep_negatives`` smallest negative ones, fed a block of
    query rows at a time (the evaluation's streamed pass feeds it the global distance as it goes)."""

    def __init__(self, g_pids, g_camids, keep_negatives: int, block: int = 64):
        self.g_pids, self.g_camids = np.asarray(g_pids), np.asarray(g_camids)
        self.keep, self.block = keep_negatives, block
        self.pos, self.neg, self.n_neg = [], np.empty(0, dtype=np.float64), 0

    def feed(self, rows, q_pids, q_camids) -> None:
        """Add the pairs of ``rows`` [b, g], the distances of queries with ``q_pids``/``q_camids``."""
        rows, q_pids, q_camids = np.asarray(rows), np.asarray(q_pids), np.asarray(q_camids)
        for s in range(0, len(rows), self.block):
            d = rows[s : s + self.block]
            valid, same_id = _valid_pairs(q_pids[s : s + self.block], self.g_pids, q_camids[s : s + self.block], self.g_camids)
            self.pos.append(d[valid & same_id].astype(np.float64))
            valid &= ~same_id
            self.n_neg += int(np.count_nonzero(valid))
            if self.keep:
                if len(self.neg) == self.keep:  # full: only a negative below the largest kept can enter
                    valid &= d < self.neg.max()
                merged = np.concatenate([self.neg, d[valid].astype(np.float64)])
                if len(merged) > self.keep:
                    merged = np.partition(merged, self.keep - 1)[: self.keep]
                self.neg = merged

    def result(self):
        """(positive distances, the kept smallest negative distances sorted, the number of negatives)."""
        return (np.concatenate(self.pos) if self.pos else np.empty(0)), np.sort(self.neg), self.n_neg


def negatives_to_keep(n_pairs: int, target_fpr: float, fprs=FPRS) -> int:
    """How many smallest negatives the largest FPR asked for can reach among ``n_pairs`` pairs."""
    return int(np.ceil(max(*fprs, target_fpr) * n_pairs)) + 1


def pair_distances(dist, q_pids, g_pids, q_camids, g_camids, keep_negatives: int, block: int = 64):
    """(positive distances, the ``keep_negatives`` smallest negative distances sorted, the number of negatives)."""
    acc = PairDistances(g_pids, g_camids, keep_negatives, block)
    acc.feed(dist, q_pids, q_camids)
    return acc.result()


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


def verification_from_pairs(pos, smallest_neg, n_neg: int, target_fpr: float, fprs=FPRS) -> dict:
    """TPR at each FPR of ``fprs`` and the threshold at ``target_fpr``, from :class:`PairDistances`' result."""
    out = {"num_positive_pairs": int(len(pos)), "num_negative_pairs": int(n_neg), "tpr_at_fpr": {}}
    for f in fprs:
        tpr, thr = tpr_at_fpr(pos, smallest_neg, n_neg, f)
        out["tpr_at_fpr"][f"{f:g}"] = {"tpr": tpr, "threshold": thr}
    tpr, thr = tpr_at_fpr(pos, smallest_neg, n_neg, target_fpr)
    out.update({"target_fpr": target_fpr, "threshold": thr, "tpr": tpr})
    return out


def verification_metrics(dist, q_pids, g_pids, q_camids, g_camids, target_fpr: float, fprs=FPRS) -> dict:
    """TPR at each FPR of ``fprs`` and the threshold at ``target_fpr`` (the one search decides with)."""
    keep = negatives_to_keep(int(np.asarray(dist).size), target_fpr, fprs)
    return verification_from_pairs(*pair_distances(dist, q_pids, g_pids, q_camids, g_camids, keep), target_fpr, fprs)


class NegativeSample:
    """The negative pair distances of a seeded sample of query rows (at most about ``max_negatives``
    pairs), fed a block of query rows at a time: the histograms' negatives."""

    def __init__(self, nq: int, g_pids, max_negatives: int = 2_000_000, seed: int = 0):
        self.g_pids = np.asarray(g_pids)
        ng = len(self.g_pids)
        rng = np.random.default_rng(seed)
        self.rows = np.sort(rng.choice(nq, min(nq, max(1, max_negatives // max(1, ng))), replace=False))
        self.parts = []

    def feed(self, start: int, rows, q_pids) -> None:
        rows, q_pids = np.asarray(rows), np.asarray(q_pids)
        for r in self.rows[(self.rows >= start) & (self.rows < start + len(rows))]:
            ok = (self.g_pids != JUNK_PID) & (self.g_pids != q_pids[r - start])
            self.parts.append(rows[r - start][ok])

    def result(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.empty(0)


def histograms(pos, neg, bins: int = 60) -> dict:
    """Histograms (shared bin edges from 0 to the largest distance) of positive and negative distances."""
    hi = float(max(pos.max() if len(pos) else 0, neg.max() if len(neg) else 0, 1e-6))
    edges = np.linspace(0.0, hi, bins + 1)
    return {"edges": edges.tolist(), "positive": np.histogram(pos, edges)[0].tolist(), "negative": np.histogram(neg, edges)[0].tolist()}


class CameraPairs:
    """Rank-1 and mAP per (query camera, gallery camera), fed a block of query rows at a time: each
    query is ranked against each camera's gallery items on its own row, so blocks give the whole
    matrix's result."""

    def __init__(self, q_pids, g_pids, q_camids, g_camids):
        self.q_pids, self.g_pids = np.asarray(q_pids).astype(np.int64), np.asarray(g_pids).astype(np.int64)
        self.q_camids, self.g_camids = np.asarray(q_camids).astype(np.int64), np.asarray(g_camids).astype(np.int64)
        self.cams = sorted(set(self.q_camids.tolist()) | set(self.g_camids.tolist()))
        self.gallery_of = {c: np.flatnonzero(self.g_camids == c) for c in self.cams}
        nq = len(self.q_pids)
        # per gallery camera: each query's (first match, AP, number of matches, INP) against it
        self.parts = {c: [np.zeros(nq, np.int64), np.zeros(nq), np.zeros(nq, np.int64), np.zeros(nq)] for c in self.cams}

    def feed(self, start: int, rows) -> None:
        rows = np.asarray(rows)
        stop = start + len(rows)
        qp, qc = self.q_pids[start:stop], self.q_camids[start:stop]
        for cb, gi in self.gallery_of.items():
            if not len(gi):
                continue
            sub = np.ascontiguousarray(rows[:, gi])
            for whole, part in zip(self.parts[cb], per_query(sub, qp, self.g_pids[gi], qc, self.g_camids[gi])):
                whole[start:stop] = part

    def result(self) -> dict:
        """{'cameras': [...], 'rank1': [[...]], 'mAP': [[...]]}; None where no query of camera a has a match in camera b."""
        r1 = [[None] * len(self.cams) for _ in self.cams]
        m = [[None] * len(self.cams) for _ in self.cams]
        for a, ca in enumerate(self.cams):
            qi = np.flatnonzero(self.q_camids == ca)
            for b, cb in enumerate(self.cams):
                if not len(qi) or not len(self.gallery_of[cb]):
                    continue
                try:
                    det = summary(*(p[qi] for p in self.parts[cb]), max_rank=1)
                except ValueError:  # no query of camera a has a valid match in camera b
                    continue
                r1[a][b], m[a][b] = float(det.cmc[0]), det.mAP
        return {"cameras": [int(c) for c in self.cams], "rank1": r1, "mAP": m}


def camera_pair_matrix(dist, q_pids, g_pids, q_camids, g_camids) -> dict:
    """{'cameras': [...], 'rank1': [[...]], 'mAP': [[...]]} per (query camera, gallery camera); None where no query has a match."""
    acc = CameraPairs(q_pids, g_pids, q_camids, g_camids)
    acc.feed(0, dist)
    return acc.result()


class Verification:
    """metrics.json's ``verification`` entry of one distance (TPR at each FPR, the threshold at
    ``target_fpr``, histograms, camera pairs), fed blocks of query rows: the whole matrix at once
    (the evaluation's matrix path) or the streamed global pass's blocks."""

    def __init__(self, q_pids, g_pids, q_camids, g_camids, target_fpr: float, fprs=FPRS):
        self.q_pids, self.q_camids = np.asarray(q_pids), np.asarray(q_camids)
        self.target_fpr, self.fprs = target_fpr, fprs
        self.pairs = PairDistances(g_pids, g_camids, negatives_to_keep(len(self.q_pids) * len(g_pids), target_fpr, fprs))
        self.negatives = NegativeSample(len(self.q_pids), g_pids)
        self.cameras = CameraPairs(q_pids, g_pids, q_camids, g_camids)

    def feed(self, start: int, rows) -> None:
        stop = start + len(rows)
        self.pairs.feed(rows, self.q_pids[start:stop], self.q_camids[start:stop])
        self.negatives.feed(start, rows, self.q_pids[start:stop])
        self.cameras.feed(start, rows)

    def result(self, variant: str) -> dict:
        pos, neg, n_neg = self.pairs.result()
        out = {"variant": variant, **verification_from_pairs(pos, neg, n_neg, self.target_fpr, self.fprs)}
        out["histograms"] = histograms(pos, self.negatives.result())
        out["camera_pairs"] = self.cameras.result()
        return out
