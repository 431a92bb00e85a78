"""Snakemake adapter for alignedreid.export.export_model."""

from pathlib import Path

from alignedreid.export import export_model
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "export", snakemake.output):
    export_model(
        snakemake.input.ckpt, Path(snakemake.output.mindir).parent, snakemake.params.model, snakemake.params.export, snakemake.params.device_target
    )
