"""Checkpoints in one place: reading a file, the names a parameter can carry, fitting a network,
and the summary of an imported model. Used by fetch_pretrained (the ImageNet backbone,
:mod:`alignedreid.model.pretrained`), ``model.checkpoint`` (training.imported.import_checkpoint), export and the
Python reference features (:func:`load_trained`).

Every checkpoint is brought to this project's names (docs/architecture.md, checkpoints) in three steps:

1. training state is dropped: optimiser moments, learning rate, step counters, loss scale;
2. one training wrapper's prefix is stripped (MindSpore's ``WithLossCell``/``TrainOneStepCell``
   ``network.``, the model zoo's ``CustomWithLossCell`` ``_backbone.``, ...);
3. the layout is recognised and renamed:
   - the model zoo's AlignedReID++ (``research/cv/AlignedReID++``, class ``ResNet50``): ``base.*`` is
     the ResNet, ``bn.*`` and ``conv1.*`` the training-time local branch, ``end_point.*`` the classifier;
   - an ImageNet ResNet (the model zoo's, classifier ``end_point``; mindcv's, ``classifier`` and
     ``down_sample`` for ``down_sample_layer``): everything but the classifier is the backbone;
   - this project's AlignedReID (``backbone.*``, ``local_bn.*``, ``local_conv.*``, ``classifier.*``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import mindspore as ms

from ..foundation.errors import CheckpointError

log = logging.getLogger(__name__)

TRAINING_STATE_PREFIXES = (
    "moments.",
    "accum.",
    "moment1.",
    "moment2.",
    "scale_sense",
    "current_iterator_step",
    "last_overflow_iterator_step",
)
TRAINING_STATE_NAMES = {"global_step", "learning_rate", "momentum", "beta1_power", "beta2_power", "epoch_num", "step_num"}
# training wrappers around the network, longest first (one is stripped)
WRAPPER_PREFIXES = ("network._backbone.", "network.network.", "_backbone.", "network.", "net.", "model.")
# the model zoo's AlignedReID++ cell ResNet50 -> this project's AlignedReID
ZOO_REID_RENAMES = (("base.", "backbone."), ("bn.", "local_bn."), ("conv1.", "local_conv."), ("end_point.", "classifier."))
# classifier heads of ImageNet ResNets (model zoo, mindcv, others)
IMAGENET_HEADS = ("end_point.", "classifier.", "fc.", "head.")
MIN_LOADED_FRACTION = 0.9


def read_checkpoint(path: str | os.PathLike) -> dict:
    """{name: Parameter} of a MindSpore checkpoint; a missing, truncated or foreign file is named."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return ms.load_checkpoint(str(path))
    except Exception as e:  # truncated, not a checkpoint, wrong format
        raise CheckpointError(f"{path}: not a readable MindSpore checkpoint ({type(e).__name__}: {e})") from e


def is_training_state(name: str) -> bool:
    return name in TRAINING_STATE_NAMES or name.startswith(TRAINING_STATE_PREFIXES)


def strip_wrapper(name: str) -> str:
    for prefix in WRAPPER_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def layout_of(names) -> str:
    """'zoo_reid', 'imagenet' or 'project' for wrapper-stripped parameter names."""
    names = list(names)
    if any(n.startswith("base.layer") for n in names):
        return "zoo_reid"
    if any(n.startswith("backbone.") for n in names):
        return "project"
    if any(n.startswith(("layer1.", "conv1.", "bn1.")) for n in names):  # a bare ResNet
        return "imagenet"
    return "project"


def _rename(name: str, layout: str) -> str:
    if layout == "zoo_reid":
        for old, new in ZOO_REID_RENAMES:
            if name.startswith(old):
                name = new + name[len(old) :]
                break
    elif layout == "imagenet":
        name = "classifier." + name.split(".", 1)[1] if name.startswith(IMAGENET_HEADS) else "backbone." + name
    return name.replace(".down_sample.", ".down_sample_layer.")


def to_project_names(params: dict) -> tuple[dict, list[str], str]:
    """(params under this project's names, the training-state names dropped, the layout recognised)."""
    dropped = [n for n in params if is_training_state(n)]
    kept = {strip_wrapper(n): v for n, v in params.items() if not is_training_state(n)}
    layout = layout_of(kept)
    return {_rename(n, layout): v for n, v in kept.items()}, dropped, layout


# ---- ImageNet backbone (fetch_pretrained) -------------------------------------------------------


def map_backbone(source: dict, backbone: ms.nn.Cell, source_name: str = "checkpoint") -> tuple[dict, list[str], list[str]]:
    """(params for ``backbone`` keyed by its own names, dropped names, unused names) of a checkpoint
    in any known layout (its classifier and local branch are dropped). Raises on a shape mismatch or
    when the checkpoint covers too little of the backbone."""
    targets = {p.name: p for p in backbone.get_parameters()}
    named, dropped, _ = to_project_names(source)
    originals = dict(zip(named, (n for n in source if not is_training_state(n))))
    mapped, unused = {}, []
    for name, value in named.items():
        if not name.startswith("backbone."):
            dropped.append(originals[name])  # classifier, local branch
            continue
        t = name[len("backbone.") :]
        if t not in targets:
            unused.append(originals[name])
            continue
        want, got = tuple(targets[t].shape), tuple(value.shape)
        if want != got:
            raise CheckpointError(
                f"{source_name}: parameter {originals[name]!r} has shape {got}, the backbone's {t!r} expects {want} (wrong depth or architecture?)"
            )
        mapped[t] = value
    if len(mapped) / max(1, len(targets)) < MIN_LOADED_FRACTION:
        missing = sorted(set(targets) - set(mapped))[:8]
        raise CheckpointError(
            f"{source_name}: only {len(mapped)} of {len(targets)} backbone tensors found "
            f"(e.g. missing {missing}); is this a ResNet checkpoint of the configured model.depth?"
        )
    return mapped, dropped, unused


def load_backbone_into(net, backbone_ckpt: str | os.PathLike) -> int:
    """Load a backbone-only checkpoint (fetch_pretrained's output) into an AlignedReID net; returns the tensors loaded."""
    params = read_checkpoint(backbone_ckpt)
    not_loaded, _ = ms.load_param_into_net(net, params, strict_load=True)
    n = len(params) - len([k for k in params if k in not_loaded])
    log.info("loaded %d pretrained tensors into the network", n)
    return n


# ---- trained AlignedReID networks (model.checkpoint, export, reference features) -----------------


def trained_parameters(ckpt: str | os.PathLike) -> dict:
    """The network tensors of a trained AlignedReID checkpoint (this project's or the model zoo's) under this project's names."""
    params, _, layout = to_project_names(read_checkpoint(ckpt))
    if "classifier.weight" not in params:
        raise CheckpointError(
            f"{ckpt}: no classifier ('classifier.weight', the model zoo's 'end_point.weight'); not an AlignedReID training checkpoint"
        )
    if layout == "imagenet":
        raise CheckpointError(f"{ckpt}: an ImageNet ResNet checkpoint, not a trained AlignedReID one; give it as pretrained.path instead")
    log.info("%s: %s names", ckpt, "the model zoo's AlignedReID++" if layout == "zoo_reid" else "this project's")
    return params


def fit_network(ckpt, params: dict, depth: int, conv_impl: str = "native"):
    """A network of ``depth`` holding ``params``; names the first tensor that is missing or has another shape."""
    from .network import build_model

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
