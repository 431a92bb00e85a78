"""Snakemake adapter for alignedreid.features.cpp_files.collect_cpp_outputs."""

from alignedreid.features.cpp_files import collect_cpp_outputs
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], snakemake.rule, snakemake.output) as log:
    log.info("%s", collect_cpp_outputs(snakemake.input.manifest, snakemake.input.outputs, snakemake.output[0], snakemake.params.model))
