"""The quick evaluation of training (train.quick_eval): global-feature mAP / rank-1 of the network
before training (seeded initialisation + pretrained backbone) and of the trained model, on a fixed
subset of the evaluation split. Its own rule after train (quick_eval), so that editing evaluation
code re-runs this indicator, never the training."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..data.manifests import read_manifest
from ..evaluation.distance import global_distance
from ..evaluation.ranking import rank
from ..features.python_ref import extract
from ..foundation.io_utils import write_json

log = logging.getLogger(__name__)


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


def quick_evaluation(model_ckpt, query_csv, gallery_csv, pretrained, model_cfg: dict, train_cfg: dict, out_json) -> dict:
    """Quick global mAP of the network as training starts it (``train.seed``, the pretrained backbone
    when given) and of the trained ``model_ckpt``, on the fixed subset; written to ``out_json``.
    ``train_cfg`` needs device_target, device_id, seed and execution."""
    import mindspore as ms

    from ..model.checkpoint import load_backbone_into, load_trained
    from ..model.network import build_model, resolve_conv_impl
    from .step import select_device, use_graph_mode

    ms.set_context(mode=ms.GRAPH_MODE if use_graph_mode(train_cfg) else ms.PYNATIVE_MODE)
    select_device(train_cfg)
    ms.set_seed(train_cfg["seed"])
    conv_impl = resolve_conv_impl(model_cfg["conv_impl"], train_cfg["device_target"])
    query, gallery = quick_eval_subset(read_manifest(query_csv), read_manifest(gallery_csv))
    log.info("quick evaluation on %d queries x %d gallery images", len(query), len(gallery))
    trained = load_trained(model_ckpt, model_cfg["depth"], conv_impl)
    num_classes = int(trained.classifier.weight.shape[0])
    init = build_model(num_classes, model_cfg["depth"], model_cfg["local_dim"], conv_impl)
    if pretrained:
        load_backbone_into(init, pretrained)
    out = {}
    for tag, net in (("init", init), ("trained", trained)):
        net.set_train(False)
        out[tag] = quick_global_map(net, query, gallery, model_cfg["height"], model_cfg["width"])
        log.info("quick global eval (%s): mAP %.1f%% rank-1 %.1f%%", tag, 100 * out[tag]["mAP"], 100 * out[tag]["rank1"])
    out.update(queries=len(query), gallery=len(gallery))
    write_json(out_json, out)
    return out


def quick_global_map(net, query: pd.DataFrame, gallery: pd.DataFrame, height: int, width: int) -> dict:
    """Global-feature mAP / rank-1 of ``net`` on query vs gallery (no re-ranking)."""
    qg, _ = extract(net, query, height, width, flip=False)  # training's own check: the plain features
    gg, _ = extract(net, gallery, height, width, flip=False)
    cmc, mAP = rank(
        global_distance(qg, gg), query.pid.to_numpy(), gallery.pid.to_numpy(), query.camid.to_numpy(), gallery.camid.to_numpy(), max_rank=10
    )
    return {"mAP": float(mAP), "rank1": float(cmc[0])}
