"""Snakemake adapter for alignedreid.serving.export.export_model."""

from pathlib import Path

from alignedreid.foundation.runlog import stage_logging
from alignedreid.serving.export import export_model

with stage_logging(snakemake.log[0], "export", snakemake.output):
    export_model(
        snakemake.input.ckpt, Path(snakemake.output.mindir).parent, snakemake.params.model, snakemake.params.export, snakemake.params.device_target
    )
