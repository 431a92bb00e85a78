"""The ONNX export run where users take it: ONNX Runtime (Python, CPU) on the rows of the parity
sample, compared with the MindSpore reference as the C++ features are (docs/architecture.md §3)."""

from __future__ import annotations

import logging

import numpy as np

from ..data.loader import eval_dataset
from ..data.manifests import read_manifest
from ..foundation.io_utils import display_path
from .files import load_features

log = logging.getLogger(__name__)


def onnx_features(onnx_path, manifest_csv, rows, height: int, width: int, threads: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Global [n, C] and stripes [n, S, C] of the manifest ``rows`` from ONNX Runtime (with ``flip``,
    the mean of each image's and its mirror's, as the other two paths compute it)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    fixed = session.get_inputs()[0].shape[0]
    batch = fixed if isinstance(fixed, int) and fixed > 0 else 16
    sub = read_manifest(manifest_csv).iloc[rows].reset_index(drop=True)
    gs, ls = [], []
    data = eval_dataset(sub, height, width, batch_size=batch, workers=1)
    for images, _ in data.create_tuple_iterator(num_epochs=1, output_numpy=True):
        n = len(images)
        if n < batch:  # an export of fixed batch: pad the last one
            images = np.concatenate([images, np.zeros((batch - n, *images.shape[1:]), images.dtype)])
        g, l = session.run(None, {name: images.astype(np.float32)})
        if flip:
            g2, l2 = session.run(None, {name: np.ascontiguousarray(images[..., ::-1], dtype=np.float32)})
            g, l = 0.5 * (g + g2), 0.5 * (l + l2)
        gs.append(g[:n])
        ls.append(l[:n].transpose(0, 2, 1))
    return np.concatenate(gs), np.concatenate(ls)


def onnx_parity(onnx_path, manifests: list, python_npz: list, height: int, width: int, tolerance: float, threads: int, flip: bool) -> dict:
    """max |ONNX Runtime - MindSpore| of the L2-normalised global features and the stripes over the
    rows the Python reference holds (its parity sample)."""
    from ..evaluation.distance import l2_normalise

    out = {"global_max_abs_diff": 0.0, "local_max_abs_diff": 0.0, "rows_compared": 0, "model": display_path(onnx_path)}
    for manifest, py in zip(manifests, python_npz):
        ref = load_features(py)
        g, l = onnx_features(onnx_path, manifest, ref.row, height, width, threads, flip)
        out["global_max_abs_diff"] = max(out["global_max_abs_diff"], float(np.abs(l2_normalise(g) - l2_normalise(ref.global_)).max()))
        out["local_max_abs_diff"] = max(out["local_max_abs_diff"], float(np.abs(l - ref.local).max()))
        out["rows_compared"] += len(ref)
    out["max_abs_diff"] = max(out["global_max_abs_diff"], out["local_max_abs_diff"])
    out["tolerance"] = tolerance
    out["ok"] = out["max_abs_diff"] <= tolerance
    log.info("ONNX Runtime vs MindSpore on %d rows: %.2e (tolerance %g)", out["rows_compared"], out["max_abs_diff"], tolerance)
    return out
