"""Files exchanged with the C++ program: preprocessed inputs and its raw outputs.

Inputs: ``{index:06d}.bin`` float32 [3, H, W] per manifest row (the same decode, resize and
ImageNet normalisation as MindSpore Python inference, so both paths see identical tensors).
Outputs: ``{index:06d}_0.bin`` global feature [C], ``{index:06d}_1.bin`` stripes [C, S].
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .errors import PipelineError
from .evaluation.features_io import save_features
from .pipeline import eval_dataset

log = logging.getLogger(__name__)


def preprocess(manifest_csv, out_dir, height: int, width: int, workers: int = 2) -> int:
    from .data.market import read_manifest

    df = read_manifest(manifest_csv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = eval_dataset(df, height, width, batch_size=64, workers=workers)
    i = 0
    for images, _ in tqdm(data.create_tuple_iterator(num_epochs=1, output_numpy=True), total=data.get_dataset_size(), desc=f"preprocess {Path(manifest_csv).stem}", mininterval=2):
        for img in images:
            np.ascontiguousarray(img, dtype=np.float32).tofile(out_dir / f"{i:06d}.bin")
            i += 1
    if i != len(df):
        raise PipelineError(f"{manifest_csv}: wrote {i} inputs for {len(df)} manifest rows")
    return i


def collect_cpp_outputs(manifest_csv, output_dir, out_npz) -> dict:
    from .data.market import read_manifest

    df = read_manifest(manifest_csv)
    output_dir = Path(output_dir)
    glob_, loc = [], []
    for i in range(len(df)):
        g_path, l_path = output_dir / f"{i:06d}_0.bin", output_dir / f"{i:06d}_1.bin"
        if not g_path.is_file() or not l_path.is_file():
            raise PipelineError(f"{output_dir}: missing C++ output for row {i} ({df.path.iloc[i]}); expected {g_path.name} and {l_path.name}")
        g = np.fromfile(g_path, dtype=np.float32)
        l = np.fromfile(l_path, dtype=np.float32)
        if l.size % g.size:
            raise PipelineError(f"{l_path}: {l.size} values are not a multiple of the global feature size {g.size}")
        glob_.append(g)
        loc.append(l.reshape(g.size, -1).T)
    save_features(out_npz, np.stack(glob_), np.stack(loc), df.pid, df.camid, df.path)
    return {"rows": len(df), "global_dim": int(glob_[0].size), "stripes": int(loc[0].shape[0])}


def parity(cpp_npz: list, py_npz: list) -> dict:
    from .evaluation.features_io import load_features

    out = {"global_max_abs_diff": 0.0, "local_max_abs_diff": 0.0}
    for c, p in zip(cpp_npz, py_npz):
        a, b = load_features(c), load_features(p)
        if a.global_.shape != b.global_.shape or a.local.shape != b.local.shape:
            raise PipelineError(f"{c} and {p} have different shapes: {a.global_.shape}/{a.local.shape} vs {b.global_.shape}/{b.local.shape}")
        out["global_max_abs_diff"] = max(out["global_max_abs_diff"], float(np.abs(a.global_ - b.global_).max()))
        out["local_max_abs_diff"] = max(out["local_max_abs_diff"], float(np.abs(a.local - b.local).max()))
    out["max_abs_diff"] = max(out["global_max_abs_diff"], out["local_max_abs_diff"])
    return out


def python_features(ckpt, depth: int, manifest_csv, out_npz, height: int, width: int, conv_impl: str = "unfold") -> None:
    """Reference features from MindSpore Python inference on the trained checkpoint."""
    import mindspore as ms

    from .data.market import read_manifest
    from .export import load_trained
    from .inference import extract

    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    df = read_manifest(manifest_csv)
    net = load_trained(ckpt, depth, conv_impl)
    g, l = extract(net, df, height, width)
    save_features(out_npz, g, l, df.pid, df.camid, df.path)
