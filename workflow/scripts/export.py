"""Snakemake adapter for alignedreid.export.export_model."""

from pathlib import Path

from alignedreid.export import export_model
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "export", snakemake.output):
    m, e = snakemake.params.model, snakemake.params.export
    export_model(
        snakemake.input.ckpt,
        Path(snakemake.output.mindir).parent,
        m["depth"],
        m["height"],
        m["width"],
        e["batch_size"],
        e["formats"],
        snakemake.params.device_target,
    )
