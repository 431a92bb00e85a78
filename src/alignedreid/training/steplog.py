"""The per-step training log (CSV): grows next to the epoch checkpoints while training runs, so an
interrupted run keeps it and a resumed one continues it; published as ``log.csv`` at the end."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..foundation.io_utils import atomic_path

COLUMNS = ["epoch", "step", "global_step", "lr", "loss", "id_loss", "triplet_loss", "local_loss", "images_per_s"]


class StepLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def start(self, resumed_epoch: int) -> None:
        """Start the log, keeping the rows of the epochs up to ``resumed_epoch``."""
        rows = []
        if resumed_epoch and self.path.exists():
            with open(self.path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) <= resumed_epoch]
        with open(self.path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)

    def append(self, rows: list[list]) -> None:
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerows(rows)

    def totals(self) -> tuple[float | None, float | None]:
        """(last loss, median images/s without each epoch's first step) over the whole run."""
        if not self.path.exists():
            return None, None
        logged = pd.read_csv(self.path)
        if logged.empty:
            return None, None
        ips = logged.loc[logged["step"] > 1, "images_per_s"]
        if ips.empty:
            ips = logged["images_per_s"]
        return float(logged["loss"].iloc[-1]), float(np.median(ips))

    def publish(self, target: Path) -> None:
        with atomic_path(target) as tmp:
            shutil.copyfile(self.path, tmp)
