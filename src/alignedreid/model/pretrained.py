"""ImageNet-pretrained backbone: obtain the checkpoint (download or local path, cached) and save
its backbone under this project's names.

Any layout :mod:`alignedreid.model.checkpoint` knows is accepted: the MindSpore model-zoo ResNets
(classifier ``end_point``), mindcv's ResNets (``down_sample``, classifier ``classifier``), a trained
model-zoo AlignedReID++ or an AlignedReID checkpoint of this project. Classifier, local branch,
step counters and optimiser state are dropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import mindspore as ms

from ..foundation.download import download
from ..foundation.errors import CheckpointError
from ..foundation.io_utils import sha256_of
from .checkpoint import map_backbone, read_checkpoint

log = logging.getLogger(__name__)


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
    return download(url, dest, sha256=cfg["sha256"], retries=cfg["retries"], timeout=cfg["timeout_s"])


def prepare_backbone_checkpoint(cfg: dict, depth: int, out: str | os.PathLike, cache_dir: str | os.PathLike) -> dict:
    """Obtain the source checkpoint, map it onto a ResNet-``depth`` backbone and save the
    backbone-only checkpoint (names prefixed ``backbone.``) to ``out``. Returns a summary."""
    from ..foundation.io_utils import atomic_path
    from .network import ResNet

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
