"""Snakemake adapter for alignedreid.features.parity: writes parity.json, fails beyond the tolerance."""

from alignedreid.features.parity import check_parity, parity
from alignedreid.io_utils import write_json
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "parity", snakemake.output) as log:
    result = parity(list(snakemake.input.cpp), list(snakemake.input.python))
    log.info("%s", result)
    check_parity(result)
    write_json(snakemake.output[0], result)
