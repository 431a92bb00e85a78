"""Epoch checkpoints of a training run: save with rotation, find the newest, resume, and discard
those of a run with other settings (the fingerprint stamp).

MindSpore's ``ModelCheckpoint`` callback rotates checkpoints only inside ``Model.train``; this
loop is custom (P x K sampler, four losses, per-step log), so rotation is done here: keep the
newest ``train.keep_checkpoints`` files, each written atomically.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import mindspore as ms
from mindspore import nn

from ..errors import CheckpointError
from ..io_utils import atomic_path

log = logging.getLogger(__name__)
CKPT_RE = re.compile(r"epoch_(\d+)\.ckpt$")
FINGERPRINT_FILE = "fingerprint.txt"
STALE_SUFFIX = ".previous"  # checkpoints of a run with other settings are moved here, not deleted


class TrainState(nn.Cell):
    """Network and optimiser together, so one checkpoint holds both."""

    def __init__(self, net, opt):
        super().__init__(auto_prefix=False)
        self.net, self.opt = net, opt


def list_epoch_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every epoch checkpoint in ``ckpt_dir``, oldest first."""
    out = []
    for p in Path(ckpt_dir).glob("epoch_*.ckpt"):
        m = CKPT_RE.search(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def reset_if_changed(ckpt_dir: Path, fingerprint: str) -> None:
    """Set aside the epoch checkpoints (and step log) of a run with another fingerprint, stamp this one.

    They are moved to ``<ckpt_dir>.previous`` (replacing an older set there), never deleted
    outright: a setting changed by mistake costs a rename, not days of training."""
    ckpt_dir = Path(ckpt_dir)
    stamp = ckpt_dir / FINGERPRINT_FILE
    if ckpt_dir.exists() and (not stamp.exists() or stamp.read_text().strip() != fingerprint):
        stale = ckpt_dir.with_name(ckpt_dir.name + STALE_SUFFIX)
        had = [p.name for _, p in list_epoch_checkpoints(ckpt_dir)]
        if stale.exists():
            shutil.rmtree(stale)
        ckpt_dir.rename(stale)
        if had:
            log.warning(
                "training settings changed since epoch checkpoints %s were written: they cannot be resumed and were "
                "moved to %s (training starts from epoch 1)",
                ", ".join(had),
                stale,
            )
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n")


def resume(state: TrainState, ckpt_dir: Path) -> int:
    """Load the newest epoch checkpoint into ``state``; return its epoch (0 when there is none)."""
    existing = list_epoch_checkpoints(ckpt_dir)
    if not existing:
        return 0
    epoch, last = existing[-1]
    try:
        params = ms.load_checkpoint(str(last))
    except Exception as e:
        raise CheckpointError(f"{last}: cannot resume from this checkpoint ({e}); delete it to resume from an earlier one") from e
    ms.load_param_into_net(state, params)
    log.info("resuming after epoch %d from %s", epoch, last)
    return epoch


def save_epoch(state: TrainState, ckpt_dir: Path, epoch: int, keep: int) -> Path:
    """Write ``epoch_NNNN.ckpt`` atomically and delete all but the newest ``keep``."""
    target = ckpt_dir / f"epoch_{epoch:04d}.ckpt"
    with atomic_path(target) as tmp:
        ms.save_checkpoint(state, str(tmp), append_dict={"epoch_num": epoch})
    for _, old in list_epoch_checkpoints(ckpt_dir)[:-keep]:
        old.unlink()
    return target
