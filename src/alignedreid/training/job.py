"""TrainJob: the one typed description of a training run, built once from the validated config.

The Snakemake adapter builds it; the launcher fingerprints it and writes it as JSON for worker
processes (msrun, rank table, SLURM nodes); every worker reads the same file back. Nothing mutates
it after construction.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..foundation.code_closure import PACKAGE_ROOT, module_identities
from ..foundation.io_utils import sha256_of, write_json
from ..model.network import resolve_conv_impl
from . import WEIGHT_CODE
from .checkpoints import fingerprint_of

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


def weight_code_identities() -> dict:
    """{module: meaning} of the weight-determining code (WEIGHT_CODE): the fingerprint's ``code``."""
    return module_identities([PACKAGE_ROOT / m for m in WEIGHT_CODE])


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
    # folder that relative image paths in the manifests are relative to (the repository root, where
    # Snakemake runs); workers that start elsewhere (rank-table device folders) resolve against it
    workdir: str = "."

    @classmethod
    def from_config(cls, config: dict, train_csv, out_dir, query_csv=None, gallery_csv=None, pretrained=None) -> TrainJob:
        model = dict(config["model"])
        model["conv_impl"] = resolve_conv_impl(model["conv_impl"], config["train"]["device_target"])

        def absolute(p):
            return str(Path(p).resolve()) if p else None

        # every path absolute: worker processes do not all start in this folder
        return cls(
            model,
            dict(config["train"]),
            absolute(train_csv),
            absolute(out_dir),
            absolute(query_csv),
            absolute(gallery_csv),
            absolute(pretrained),
            workdir=str(Path.cwd().resolve()),
        )

    def check_inputs(self) -> list[str]:
        """The files this run reads (manifests, the first image of each, the pretrained backbone),
        checked before any device is touched; returns them, raises naming the first missing one."""
        from ..foundation.errors import PipelineError

        seen = []
        for csv in (self.train_csv, self.query_csv, self.gallery_csv):
            if not csv:
                continue
            if not Path(csv).is_file():
                raise PipelineError(f"{csv}: manifest not found (worker in {Path.cwd()})")
            df = self.manifest(csv)
            if len(df) and not Path(df["path"].iloc[0]).is_file():
                raise PipelineError(f"{csv}: image {df['path'].iloc[0]} not found (relative paths are read from {self.workdir})")
            seen.append(csv)
        if self.pretrained:
            if not Path(self.pretrained).is_file():
                raise PipelineError(f"{self.pretrained}: pretrained backbone not found")
            seen.append(self.pretrained)
        return seen

    def manifest(self, csv) -> pd.DataFrame:
        """A manifest with its image paths made absolute (relative ones are relative to ``workdir``)."""
        df = pd.read_csv(csv)
        if "path" in df.columns:
            root = Path(self.workdir)
            df["path"] = [p if os.path.isabs(p) else str(root / p) for p in df["path"].astype(str)]
        return df

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir)

    @property
    def sets_dir(self) -> Path:
        """Folder of the checkpoint sets, one per fingerprint."""
        return self.out_path / "checkpoints"

    @property
    def checkpoint_dir(self) -> Path:
        """This run's set of epoch checkpoints (and its step log): named by the fingerprint."""
        return self.sets_dir / self.fingerprint()[:16]

    def with_provenance(self) -> TrainJob:
        """The job with the hashes of what else determines the weights: the manifest, the pretrained
        backbone and the meaning of each WEIGHT_CODE module (comments and docstrings do not count)."""
        return dataclasses.replace(
            self,
            provenance={
                "manifest_sha256": sha256_of(self.train_csv),
                "pretrained_sha256": sha256_of(self.pretrained) if self.pretrained else None,
                "code": weight_code_identities(),
            },
        )

    def description(self) -> dict:
        """Everything the fingerprint hashes, readable: what a set of epoch checkpoints was trained with."""
        train = {k: v for k, v in self.train.items() if k not in EXECUTION_ONLY_KEYS}
        return {"model": self.model, "train": train, **self.provenance}

    def fingerprint(self) -> str:
        """Hash of everything that determines the weights; epoch checkpoints written under another
        fingerprint are not resumed (they stay in their own set)."""
        return fingerprint_of(self.description())

    def save(self, path: str | os.PathLike) -> Path:
        write_json(path, dataclasses.asdict(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainJob:
        return cls(**json.loads(Path(path).read_text()))
