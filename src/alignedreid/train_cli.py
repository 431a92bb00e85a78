"""Entry point of one training process (``python -m alignedreid.train_cli --job job.json``),
as started by msrun or the rank-table launcher; also called in-process for one device."""
from __future__ import annotations

import argparse
import json
import logging

import pandas as pd

from .model import resolve_conv_impl


def run_job(job: dict) -> dict:
    from .train import train

    cfg = {"model": dict(job["model"]), "train": job["train"]}
    cfg["model"]["conv_impl"] = resolve_conv_impl(cfg["model"].get("conv_impl", "auto"), job["train"].get("device_target", "CPU"))
    eval_fn = None
    if job["train"].get("quick_eval", True) and job.get("query_csv") and job.get("gallery_csv"):
        from .inference import quick_global_map

        q, g = pd.read_csv(job["query_csv"]), pd.read_csv(job["gallery_csv"])
        m = cfg["model"]

        def eval_fn(net, tag):
            res = quick_global_map(net, q, g, m["height"], m["width"])
            logging.getLogger(__name__).info("quick global eval (%s): mAP %.1f%% rank-1 %.1f%%", tag, 100 * res["mAP"], 100 * res["rank1"])
            net.set_train(True)
            return res

    return train(cfg, job["train_csv"], job["out_dir"], job.get("pretrained"), eval_fn)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run one AlignedReID++ training process from a job file")
    ap.add_argument("--job", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with open(args.job) as fh:
        run_job(json.load(fh))


if __name__ == "__main__":
    main()
