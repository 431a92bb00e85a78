"""Entry of one training process: ``python -m alignedreid.training.worker --job job.json``, or this
file run as a script (msrun takes a script path). Launchers start it once per rank; the in-process
launcher calls :func:`run_worker` directly."""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

from alignedreid.errors import PipelineError  # the package import applies the CPU runtime defaults first
from alignedreid.training.job import TrainJob

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
    from alignedreid.features.python_ref import quick_global_map

    query, gallery = quick_eval_subset(job.manifest(job.query_csv), job.manifest(job.gallery_csv))
    log.info("quick evaluation on %d queries x %d gallery images", len(query), len(gallery))

    def eval_fn(net, tag):
        res = quick_global_map(net, query, gallery, job.model["height"], job.model["width"])
        log.info("quick global eval (%s): mAP %.1f%% rank-1 %.1f%%", tag, 100 * res["mAP"], 100 * res["rank1"])
        net.set_train(True)
        return res

    return eval_fn


def run_worker(job: TrainJob) -> dict:
    from alignedreid.training.loop import train

    log.info("inputs found: %s", ", ".join(job.check_inputs()))
    return train(job, quick_eval_fn(job))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Run one AlignedReID++ training process from a job file")
    ap.add_argument("--job", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_worker(TrainJob.load(args.job))
    except PipelineError as e:  # a message for the user, not a traceback
        log.error("%s", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
