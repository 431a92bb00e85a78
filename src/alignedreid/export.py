"""Export the trained network (eval mode) to MindIR, ONNX and, on Ascend, AIR.

The exported graph takes float32 [batch, 3, height, width] (ImageNet-normalised, NCHW) and
returns the global feature [batch, C] and the stripes [batch, C, S] (per-stripe L2-normalised
width-max of the backbone map). It is built with MindSpore's native convolution so that the
ONNX file holds standard Conv nodes; the weights are those of the trained checkpoint.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import mindspore as ms
import numpy as np

from .errors import CheckpointError, ConfigError
from .io_utils import atomic_path
from .pretrained import read_checkpoint

log = logging.getLogger(__name__)
SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}


# Wrappers a training script may put around the network's parameter names (MindSpore's
# WithLossCell / TrainOneStepCell and similar); stripped when reading a trained checkpoint.
WRAPPER_PREFIXES = ("network._backbone.", "network.network.", "_backbone.", "network.", "net.", "model.")


def trained_parameters(ckpt: str | os.PathLike) -> dict:
    """The network tensors of a trained AlignedReID checkpoint under this project's names."""
    params = {}
    for name, value in read_checkpoint(ckpt).items():
        for prefix in WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        params[name.replace(".down_sample.", ".down_sample_layer.")] = value
    if "classifier.weight" not in params:
        raise CheckpointError(f"{ckpt}: no 'classifier.weight'; not an AlignedReID training checkpoint")
    return params


def fit_network(ckpt, params: dict, depth: int, conv_impl: str = "native"):
    """A network of ``depth`` holding ``params``; names the first tensor that is missing or has another shape."""
    from .model import build_model

    num_classes = int(params["classifier.weight"].shape[0])
    local_dim = int(params["local_conv.weight"].shape[0]) if "local_conv.weight" in params else 128
    net = build_model(num_classes, depth, local_dim, conv_impl)
    expected = {p.name: tuple(p.shape) for p in net.get_parameters()}
    missing = sorted(set(expected) - set(params))
    if missing:
        raise CheckpointError(f"{ckpt}: lacks {len(missing)} network tensors (e.g. {missing[:4]}); was it trained with model.depth={depth}?")
    for name, shape in expected.items():
        if tuple(params[name].shape) != shape:
            raise CheckpointError(
                f"{ckpt}: parameter {name!r} has shape {tuple(params[name].shape)}, a ResNet-{depth} AlignedReID network "
                f"expects {shape} (model.depth or the input size differs from the checkpoint's)"
            )
    ms.load_param_into_net(net, {k: params[k] for k in expected}, strict_load=True)
    net.set_train(False)
    return net


def load_trained(ckpt: str | os.PathLike, depth: int, conv_impl: str = "native"):
    """Eval-mode AlignedReID network with the weights of a training checkpoint."""
    return fit_network(ckpt, trained_parameters(ckpt), depth, conv_impl)


def import_checkpoint(src, depth: int, height: int, width: int, out_dir) -> dict:
    """Rule train's stand-in when ``model.checkpoint`` is set: check that ``src`` fits the configured
    network, then write it as ``model.ckpt`` with an empty step log and a summary naming the source."""
    from .io_utils import sha256_of, write_json
    from .training.steplog import COLUMNS

    net = load_trained(src, depth)
    out_dir = Path(out_dir)
    num_classes = int(net.classifier.weight.shape[0])
    with atomic_path(out_dir / "model.ckpt") as tmp:
        ms.save_checkpoint(net, str(tmp), append_dict={"num_classes": num_classes, "depth": depth})
    with atomic_path(out_dir / "log.csv") as tmp:
        tmp.write_text(",".join(COLUMNS) + "\n")
    summary = {
        "source": "checkpoint",
        "checkpoint": str(src),
        "checkpoint_sha256": sha256_of(src),
        "num_classes": num_classes,
        "depth": depth,
        "height": height,
        "width": width,
        "steps_per_epoch": None,
        "epochs": 0,
        "max_steps": None,
        "world_size": None,
        "final_loss": None,
        "median_images_per_s": None,
        "median_step_s": None,
    }
    write_json(out_dir / "train_summary.json", summary)
    log.info("checked %s (%d identities) and wrote %s", src, num_classes, out_dir / "model.ckpt")
    return summary


def export_model(
    ckpt, out_dir, depth: int, height: int, width: int, batch_size: int = 1, formats=("MINDIR", "ONNX"), device_target: str = "CPU"
) -> dict:
    """Write ``model.<fmt>`` files into ``out_dir``; returns {format: path}."""
    formats = [f.upper() for f in formats]
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
