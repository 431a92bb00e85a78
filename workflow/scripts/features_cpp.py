"""Snakemake adapter for alignedreid.serving.cpp_program.collect_cpp_outputs (every shard of a split)."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.serving.cpp_program import collect_cpp_outputs

with stage_logging(snakemake.log[0], snakemake.rule, snakemake.output) as log:
    p = snakemake.params
    log.info("%s", collect_cpp_outputs(snakemake.input.manifest, list(snakemake.input.outputs), snakemake.output[0], p.model, p.batch))
