"""Snakemake adapter for alignedreid.serving.cpp_run.run_cpp_program."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.serving.cpp_run import run_cpp_program
from alignedreid.serving.program_settings import ProgramSettings

with stage_logging(snakemake.log[0], snakemake.rule, snakemake.output):
    i = snakemake.input
    run_cpp_program(i.bin, i.model, i.inputs, snakemake.output[0], ProgramSettings.from_param(snakemake.params.program), snakemake.threads)
