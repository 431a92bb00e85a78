"""Rule import_checkpoint, train's stand-in when ``model.checkpoint`` is set: a trained checkpoint
(this project's or the model zoo's names, see alignedreid.model.checkpoint) written as train's three outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import mindspore as ms

from ..foundation.io_utils import atomic_path, sha256_of, write_json
from ..model.checkpoint import load_trained
from .steplog import COLUMNS

log = logging.getLogger(__name__)


def import_checkpoint(src, depth: int, height: int, width: int, out_dir) -> dict:
    """Rule train's stand-in when ``model.checkpoint`` is set: check that ``src`` fits the configured
    network, then write it under this project's names as ``model.ckpt`` with an empty step log and a
    summary naming the source."""
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
