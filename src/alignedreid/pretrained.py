"""ImageNet-pretrained backbone: obtain the checkpoint (download or local path, cached) and map
its parameter names onto the AlignedReID backbone.

Supported sources: the MindSpore model-zoo ResNet checkpoints (names ``conv1.weight``,
``layerN.i.down_sample_layer.0.weight``, classifier ``end_point``), mindcv's ResNets
(``layerN.i.down_sample.0.weight``, classifier ``classifier``), and AlignedReID checkpoints
of this package (prefix ``backbone.``). Classifier, step counters and optimiser state are dropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import mindspore as ms

from .download import download
from .errors import CheckpointError
from .io_utils import sha256_of

log = logging.getLogger(__name__)

PREFIXES = ("network.backbone.", "backbone.", "network.", "net.", "_backbone.", "model.")
DROPPED_PREFIXES = (
    "moments.",
    "accum.",
    "end_point.",
    "classifier.",
    "fc.",
    "head.",
    "local_",
    "scale_sense",
    "current_iterator_step",
    "last_overflow_iterator_step",
)
DROPPED_NAMES = {"global_step", "learning_rate", "momentum", "beta1_power", "beta2_power", "epoch_num", "step_num"}
MIN_LOADED_FRACTION = 0.9


def source_to_backbone_name(name: str) -> str | None:
    """Name of the backbone parameter a checkpoint entry maps to, or None if it is dropped."""
    if name in DROPPED_NAMES or name.startswith(DROPPED_PREFIXES):
        return None
    for p in PREFIXES:
        if name.startswith(p):
            name = name[len(p) :]
            break
    if name.startswith(DROPPED_PREFIXES):
        return None
    return name.replace(".down_sample.", ".down_sample_layer.")


def read_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return ms.load_checkpoint(str(path))
    except Exception as e:  # truncated, not a checkpoint, wrong format
        raise CheckpointError(f"{path}: not a readable MindSpore checkpoint ({type(e).__name__}: {e})") from e


def map_backbone(source: dict, backbone: ms.nn.Cell, source_name: str = "checkpoint") -> tuple[dict, list[str], list[str]]:
    """Return (params for the backbone keyed by its own names, dropped names, unused names).
    Raises on a shape mismatch or when the checkpoint covers too little of the backbone."""
    targets = {p.name: p for p in backbone.get_parameters()}
    mapped, dropped, unused = {}, [], []
    for name, value in source.items():
        t = source_to_backbone_name(name)
        if t is None:
            dropped.append(name)
            continue
        if t not in targets:
            unused.append(name)
            continue
        want = tuple(targets[t].shape)
        got = tuple(value.shape)
        if want != got:
            raise CheckpointError(
                f"{source_name}: parameter {name!r} has shape {got}, the backbone's {t!r} expects {want} (wrong depth or architecture?)"
            )
        mapped[t] = value
    frac = len(mapped) / max(1, len(targets))
    if frac < MIN_LOADED_FRACTION:
        missing = sorted(set(targets) - set(mapped))[:8]
        raise CheckpointError(
            f"{source_name}: only {len(mapped)} of {len(targets)} backbone tensors found "
            f"(e.g. missing {missing}); is this a ResNet checkpoint of the configured model.depth?"
        )
    return mapped, dropped, unused


def cache_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def obtain(cfg: dict, cache_dir: str | os.PathLike) -> Path:
    """Local path of the source checkpoint: ``cfg['path']`` or a cached download of ``cfg['url']``."""
    if cfg["path"]:
        p = Path(cfg["path"]).expanduser()
        if not p.is_file():
            raise CheckpointError(f"{p}: pretrained.path does not exist")
        if cfg["sha256"] and sha256_of(p) != cfg["sha256"].lower():
            raise CheckpointError(f"{p}: sha256 differs from pretrained.sha256 ({cfg['sha256']})")
        return p
    url = cfg["url"]
    if not url:
        raise CheckpointError("pretrained: give either pretrained.url or pretrained.path (or set pretrained: null to train from scratch)")
    name = Path(url.split("?")[0]).name or "checkpoint.ckpt"
    dest = Path(cache_dir).expanduser() / cache_key(url) / name
    if dest.is_file():
        if not cfg["sha256"] or sha256_of(dest) == cfg["sha256"].lower():
            log.info("using cached download %s", dest)
            return dest
        log.warning("cached %s does not match pretrained.sha256; downloading again", dest)
        dest.unlink()
    log.info("downloading %s", url)
    return download(url, dest, sha256=cfg["sha256"], retries=cfg["retries"], timeout=cfg["timeout_s"])


def prepare_backbone_checkpoint(cfg: dict, depth: int, out: str | os.PathLike, cache_dir: str | os.PathLike) -> dict:
    """Obtain the source checkpoint, map it onto a ResNet-``depth`` backbone and save the
    backbone-only checkpoint (names prefixed ``backbone.``) to ``out``. Returns a summary."""
    from .io_utils import atomic_path
    from .model import ResNet

    src = obtain(cfg, cache_dir)
    backbone = ResNet(depth)
    mapped, dropped, unused = map_backbone(read_checkpoint(src), backbone, str(src))
    log.info("mapped %d of %d backbone tensors from %s", len(mapped), len(list(backbone.get_parameters())), src)
    log.info(
        "dropped %d entries (classifier, optimiser state, counters): %s",
        len(dropped),
        ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else ""),
    )
    if unused:
        log.warning("%d entries matched no backbone parameter: %s", len(unused), ", ".join(unused[:10]))
    with atomic_path(out) as tmp:
        ms.save_checkpoint([{"name": f"backbone.{k}", "data": v} for k, v in sorted(mapped.items())], str(tmp))
    return {"source": str(src), "sha256": sha256_of(src), "loaded": len(mapped), "dropped": dropped, "unused": unused}


def load_backbone_into(net, backbone_ckpt: str | os.PathLike) -> int:
    """Load a checkpoint written by :func:`prepare_backbone_checkpoint` into an AlignedReID net."""
    params = read_checkpoint(backbone_ckpt)
    not_loaded, _ = ms.load_param_into_net(net, params, strict_load=True)
    n = len(params) - len([k for k in params if k in not_loaded])
    log.info("loaded %d pretrained tensors into the network", n)
    return n
