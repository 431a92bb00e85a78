"""Snakemake adapter for alignedreid.data.prepare.prepare_dataset."""

from pathlib import Path

from alignedreid.data.prepare import prepare_dataset
from alignedreid.foundation.runlog import stage_logging

with stage_logging(snakemake.log[0], snakemake.rule, snakemake.output):
    prepare_dataset(
        snakemake.params.dataset, out_dir=Path(snakemake.output.train).parent, work_dir=snakemake.params.work_dir, workers=snakemake.threads
    )
