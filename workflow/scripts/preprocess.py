"""Snakemake adapter for alignedreid.serving.cpp_program.preprocess."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.serving.cpp_program import preprocess

with stage_logging(snakemake.log[0], "preprocess", snakemake.output) as log:
    p = snakemake.params
    n = preprocess(snakemake.input.manifest, snakemake.output[0], *p.size, workers=snakemake.threads, layout=p.layout)
    log.info("wrote %d inputs (%s)", n, p.layout)
