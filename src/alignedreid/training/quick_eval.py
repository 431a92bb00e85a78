"""The quick evaluation during training: global-feature mAP / rank-1 of the network on a fixed
subset of the evaluation split, on rank 0 (train.quick_eval)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..evaluation.distance import global_distance
from ..evaluation.ranking import rank
from ..features.python_ref import extract
from .job import TrainJob

log = logging.getLogger("alignedreid.training.worker")


# The quick evaluation runs on rank 0 while the other ranks wait: it uses a fixed subset so that it
# costs minutes, not an inference pass over every test image (23,100 for Market-1501).
QUICK_EVAL_QUERIES = 500
QUICK_EVAL_DISTRACTING = 2000  # gallery images of other identities, beside every match of the chosen queries


def quick_eval_subset(query, gallery, seed: int = 0):
    """(query, gallery) rows of the quick evaluation: up to QUICK_EVAL_QUERIES seeded queries, the gallery
    images of their identities and up to QUICK_EVAL_DISTRACTING others; everything when smaller."""
    rng = np.random.default_rng(seed)
    if len(query) > QUICK_EVAL_QUERIES:
        query = query.iloc[np.sort(rng.choice(len(query), QUICK_EVAL_QUERIES, replace=False))]
    match = gallery.pid.isin(set(query.pid)).to_numpy()
    others = np.flatnonzero(~match)
    if len(others) > QUICK_EVAL_DISTRACTING:
        others = np.sort(rng.choice(others, QUICK_EVAL_DISTRACTING, replace=False))
    keep = np.sort(np.concatenate([np.flatnonzero(match), others]))
    return query.reset_index(drop=True), gallery.iloc[keep].reset_index(drop=True)


def quick_eval_fn(job: TrainJob):
    """Global-feature mAP of the network on a fixed query x gallery subset, or None when not asked for."""
    if not (job.train["quick_eval"] and job.query_csv and job.gallery_csv):
        return None
    query, gallery = quick_eval_subset(job.manifest(job.query_csv), job.manifest(job.gallery_csv))
    log.info("quick evaluation on %d queries x %d gallery images", len(query), len(gallery))

    def eval_fn(net, tag):
        res = quick_global_map(net, query, gallery, job.model["height"], job.model["width"])
        log.info("quick global eval (%s): mAP %.1f%% rank-1 %.1f%%", tag, 100 * res["mAP"], 100 * res["rank1"])
        net.set_train(True)
        return res

    return eval_fn


def quick_global_map(net, query: pd.DataFrame, gallery: pd.DataFrame, height: int, width: int) -> dict:
    """Global-feature mAP / rank-1 of ``net`` on query vs gallery (no re-ranking)."""
    qg, _ = extract(net, query, height, width)
    gg, _ = extract(net, gallery, height, width)
    cmc, mAP = rank(
        global_distance(qg, gg), query.pid.to_numpy(), gallery.pid.to_numpy(), query.camid.to_numpy(), gallery.camid.to_numpy(), max_rank=10
    )
    return {"mAP": float(mAP), "rank1": float(cmc[0])}
