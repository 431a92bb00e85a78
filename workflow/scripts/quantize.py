"""Snakemake adapter for alignedreid.quantize.quantize_model."""

from pathlib import Path

from alignedreid.quantize import quantize_model
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "quantize", snakemake.output):
    p, c = snakemake.params, snakemake.params.calibration
    quantize_model(
        snakemake.input.onnx, snakemake.input.train, Path(snakemake.output.xml).parent, p.height, p.width, c["size"], c["seed"], snakemake.threads
    )
