"""Snakemake adapter for alignedreid.features.cpp_files.preprocess."""

from alignedreid.features.cpp_files import preprocess
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "preprocess", snakemake.output) as log:
    p = snakemake.params
    n = preprocess(snakemake.input.manifest, snakemake.output[0], p.height, p.width, workers=snakemake.threads, layout=p.layout)
    log.info("wrote %d inputs (%s)", n, p.layout)
