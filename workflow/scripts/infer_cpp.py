"""Snakemake adapter for alignedreid.features.cpp_files.run_cpp_program."""

from alignedreid.features.cpp_files import run_cpp_program
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], snakemake.rule, snakemake.output):
    p = snakemake.params
    run_cpp_program(
        snakemake.input.bin,
        snakemake.input.model,
        snakemake.input.inputs,
        snakemake.output[0],
        p.batch,
        p.height,
        p.width,
        p.device_id,
        snakemake.threads,
        flip=p.flip,
        precision=p.precision,
        hint=p.hint,
    )
