"""Snakemake adapter for alignedreid.cpp_io.parity."""
from alignedreid.cpp_io import parity
from alignedreid.io_utils import write_json
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "parity") as log:
    result = parity(list(snakemake.input.cpp), list(snakemake.input.python))
    log.info("%s", result)
    write_json(snakemake.output[0], result)
