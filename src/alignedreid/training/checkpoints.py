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
    """Discard the epoch checkpoints (and step log) of a run with another fingerprint; stamp this one."""
    stamp = ckpt_dir / FINGERPRINT_FILE
    if ckpt_dir.exists() and (not stamp.exists() or stamp.read_text().strip() != fingerprint):
        log.info("training settings changed: discarding epoch checkpoints of the previous run")
        shutil.rmtree(ckpt_dir)
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
