"""TrainJob: the one typed description of a training run, built once from the validated config.

The Snakemake adapter builds it; the launcher fingerprints it and writes it as JSON for worker
processes (msrun, rank table, SLURM nodes); every worker reads the same file back. Nothing mutates
it after construction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..io_utils import sha256_of, write_json
from ..model import resolve_conv_impl
from . import TRAINING_CODE

# train.* keys that change how or where a run is executed, not what it computes (left out of the
# fingerprint, so that changing them resumes the epoch checkpoints instead of discarding them).
# device_num stays in: it changes the global batch and each rank's share of the identities.
EXECUTION_ONLY_KEYS = (
    "threads",
    "data_workers",
    "quick_eval",
    "keep_checkpoints",
    "save_every",
    "stall_factor",
    "stall_min_s",
    "execution",
    "launcher",
    "rank_table_file",
    "master_port",
    "device_id",
    "nodes",
)
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TrainJob:
    model: dict  # validated config section "model", conv_impl resolved for the device
    train: dict  # validated config section "train"
    train_csv: str
    out_dir: str
    query_csv: str | None = None  # for the quick evaluation before and after training
    gallery_csv: str | None = None
    pretrained: str | None = None  # backbone checkpoint from fetch_pretrained
    provenance: dict = field(default_factory=dict)  # sha256 of the inputs and code, set by with_provenance

    @classmethod
    def from_config(cls, config: dict, train_csv, out_dir, query_csv=None, gallery_csv=None, pretrained=None) -> TrainJob:
        model = dict(config["model"])
        model["conv_impl"] = resolve_conv_impl(model["conv_impl"], config["train"]["device_target"])
        return cls(
            model,
            dict(config["train"]),
            str(train_csv),
            str(out_dir),
            str(query_csv) if query_csv else None,
            str(gallery_csv) if gallery_csv else None,
            str(pretrained) if pretrained else None,
        )

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir)

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_path / "checkpoints"

    def with_provenance(self) -> TrainJob:
        code = hashlib.sha256()
        for name in TRAINING_CODE:
            code.update((PACKAGE_ROOT / name).read_bytes())
        return dataclasses.replace(
            self,
            provenance={
                "manifest_sha256": sha256_of(self.train_csv),
                "pretrained_sha256": sha256_of(self.pretrained) if self.pretrained else None,
                "code_sha256": code.hexdigest(),
            },
        )

    def fingerprint(self) -> str:
        """Hash of everything that defines what the run computes; epoch checkpoints written under
        another fingerprint are not resumed."""
        train = {k: v for k, v in self.train.items() if k not in EXECUTION_ONLY_KEYS}
        keep = {"model": self.model, "train": train, **self.provenance}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()

    def save(self, path: str | os.PathLike) -> Path:
        write_json(path, dataclasses.asdict(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainJob:
        return cls(**json.loads(Path(path).read_text()))
