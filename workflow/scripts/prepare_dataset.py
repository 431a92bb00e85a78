"""Snakemake adapter for alignedreid.data.prepare.prepare_dataset."""
from pathlib import Path

from alignedreid.data.prepare import prepare_dataset
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "prepare_dataset"):
    cfg = dict(snakemake.params.dataset)
    cfg["workers"] = max(snakemake.threads, cfg.get("workers", 1))
    prepare_dataset(cfg, out_dir=Path(snakemake.output.train).parent, work_dir=snakemake.params.work_dir)
