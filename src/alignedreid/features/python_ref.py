"""MindSpore Python inference: manifest -> global and local features (the reference path), and the
quick global-feature evaluation used during training."""

from __future__ import annotations

import logging

import mindspore as ms
import numpy as np
import pandas as pd
from tqdm import tqdm

from ..data.loader import eval_dataset
from ..data.manifests import read_manifest
from ..model.network import resolve_conv_impl
from .files import save_features

log = logging.getLogger(__name__)
BATCH = 32  # images per forward pass of extract: shards are cut at its multiples (same batches as unsharded)


def extract(net, manifest: pd.DataFrame, height: int, width: int, flip: bool, batch_size: int = BATCH, workers: int = 2):
    """Run the eval-mode network over every manifest row, in order; with ``flip`` each output is the
    mean of the image's and its horizontal mirror's (test-time flip, as the C++ program's --flip 1).
    Returns global [N, C] and local [N, S, C] (stripes first, as the feature files)."""
    net.set_train(False)
    data = eval_dataset(manifest, height, width, batch_size, workers)
    gs, ls = [], []
    for images, _ in tqdm(data.create_tuple_iterator(num_epochs=1), total=data.get_dataset_size(), desc="features", mininterval=2):
        g, l = (t.asnumpy() for t in net(images))
        if flip:
            mirror = ms.Tensor(np.ascontiguousarray(images.asnumpy()[..., ::-1]))
            g2, l2 = (t.asnumpy() for t in net(mirror))
            g, l = 0.5 * (g + g2), 0.5 * (l + l2)
        gs.append(g)
        ls.append(l.transpose(0, 2, 1))
    return np.concatenate(gs).astype(np.float32), np.concatenate(ls).astype(np.float32)


def sample_rows(n: int, size: int, seed: int = 0) -> np.ndarray:
    """The fixed, seeded sample of manifest rows that parity checks (all rows when size is 0 or >= n), sorted."""
    if size <= 0 or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def python_features(
    ckpt, manifest_csv, out_npz, model_cfg: dict, sample: int, device_target: str, flip: bool, shard: tuple[int, int] = (0, 1)
) -> int:
    """Reference features from MindSpore Python inference (graph mode) on the trained checkpoint, for
    every manifest row or a fixed sample of ``sample`` rows (stored with their row numbers), or of
    shard ``shard`` = (index, count) of those rows (serving.shards.shard_rows at multiples of
    ``BATCH``: the same batches as one job; also stored with their rows, joined by ``join_feature_files``).
    Runs on ``device_target`` (the pipeline passes CPU: a float32 reference whatever the training
    device, as the C++ program computes). ``model_cfg`` is the validated ``model`` section (depth,
    height, width, conv_impl). Returns the number of rows computed."""
    from ..model.checkpoint import load_trained
    from ..serving.shards import shard_rows

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device(device_target)
    df = read_manifest(manifest_csv)
    rows = sample_rows(len(df), sample)
    rows = rows[shard_rows(len(rows), shard[1], BATCH)[shard[0]]]
    sub = df.iloc[rows].reset_index(drop=True)
    if len(sub):
        net = load_trained(ckpt, model_cfg["depth"], resolve_conv_impl(model_cfg["conv_impl"], device_target))
        g, l = extract(net, sub, model_cfg["height"], model_cfg["width"], flip=flip, batch_size=BATCH)
    else:  # an empty shard (more shards than batches)
        g, l = np.zeros((0, 0), np.float32), np.zeros((0, 0, 0), np.float32)
    save_features(out_npz, g, l, sub.pid, sub.camid, sub.path, row=None if len(rows) == len(df) else rows, model=f"{ckpt} (MindSpore)")
    return len(rows)
