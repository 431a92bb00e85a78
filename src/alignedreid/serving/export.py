"""Export the trained network (eval mode) to MindIR and ONNX (on the CPU) and, asked for on Ascend, AIR.

The exported graph takes float32 [batch, 3, height, width] (ImageNet-normalised, NCHW) and
returns the global feature [batch, C] and the stripes [batch, C, S] (per-stripe L2-normalised
width-max of the backbone map). It is built with MindSpore's native convolution so that the
ONNX file holds standard Conv nodes; the weights are those of the trained checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mindspore as ms
import numpy as np

from ..foundation.errors import ConfigError
from ..foundation.io_utils import atomic_path
from ..model.checkpoint import load_trained

log = logging.getLogger(__name__)
SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}


def export_model(ckpt, out_dir, model_cfg: dict, export_cfg: dict, device_target: str) -> dict:
    """Write ``model.<fmt>`` files into ``out_dir`` for the validated ``model`` and ``export`` config
    sections (depth, height, width; batch_size, formats) on ``device_target``; returns {format: path}."""
    depth, height, width, batch_size = model_cfg["depth"], model_cfg["height"], model_cfg["width"], export_cfg["batch_size"]
    formats = [f.upper() for f in export_cfg["formats"]]
    formats = sorted(set(formats) | {"MINDIR", "ONNX"}, key=list(SUFFIX).index)  # the pipeline needs both
    bad = [f for f in formats if f not in SUFFIX]
    if bad:
        raise ConfigError(f"export.formats: unknown format(s) {bad}; expected some of {sorted(SUFFIX)}")
    if "AIR" in formats and device_target != "Ascend":
        log.warning("AIR export needs an Ascend device (train.device_target is %s): skipping AIR", device_target)
        formats = [f for f in formats if f != "AIR"]
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device(device_target)
    net = load_trained(ckpt, depth, "native")
    dummy = ms.Tensor(np.zeros((batch_size, 3, height, width), np.float32))
    out_dir = Path(out_dir)
    written = {}
    for fmt in formats:
        target = out_dir / f"model{SUFFIX[fmt]}"
        with atomic_path(target) as tmp:
            base = str(tmp)[: -len(SUFFIX[fmt])]
            ms.export(net, dummy, file_name=base, file_format=fmt)
            if not tmp.exists() or tmp.stat().st_size == 0:
                raise RuntimeError(f"MindSpore wrote no {fmt} file at {tmp}")
        written[fmt] = str(target)
        log.info("exported %s (%.1f MB)", target, target.stat().st_size / 2**20)
    return written
