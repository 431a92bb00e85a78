"""Snakemake adapter for alignedreid.serving.quantize.quantize_model."""

from pathlib import Path

from alignedreid.foundation.runlog import stage_logging
from alignedreid.serving.quantize import quantize_model

with stage_logging(snakemake.log[0], "quantize", snakemake.output):
    p, c = snakemake.params, snakemake.params.calibration
    quantize_model(snakemake.input.onnx, snakemake.input.train, Path(snakemake.output.xml).parent, *p.size, c["size"], c["seed"], snakemake.threads)
