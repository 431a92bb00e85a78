"""Snakemake adapter for alignedreid.serving.cpp_program.collect_cpp_outputs."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.serving.cpp_program import collect_cpp_outputs

with stage_logging(snakemake.log[0], snakemake.rule, snakemake.output) as log:
    log.info("%s", collect_cpp_outputs(snakemake.input.manifest, snakemake.input.outputs, snakemake.output[0], snakemake.params.model))
