"""Snakemake adapter for alignedreid.cpp_io.preprocess."""
from alignedreid.cpp_io import preprocess
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "preprocess") as log:
    n = preprocess(snakemake.input.manifest, snakemake.output[0], snakemake.params.height, snakemake.params.width)
    log.info("wrote %d inputs", n)
