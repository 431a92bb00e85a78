"""Snakemake adapter for alignedreid.features.cpp_files.preprocess."""

from alignedreid.features.cpp_files import preprocess
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "preprocess") as log:
    n = preprocess(snakemake.input.manifest, snakemake.output[0], snakemake.params.height, snakemake.params.width, workers=snakemake.threads)
    log.info("wrote %d inputs", n)
