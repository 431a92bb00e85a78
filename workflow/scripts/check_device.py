"""Snakemake adapter for alignedreid.training.device_check.check_device."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.training.device_check import check_device

with stage_logging(snakemake.log[0], "check_device", snakemake.output) as log:
    result = check_device(snakemake.params.target, snakemake.params.device_id, snakemake.output[0])
    log.info("%s device %s: %s; %s", result["target"], snakemake.params.device_id, result["detail"], result["found"])
