"""Snakemake adapter for alignedreid.features.python_ref.python_features."""

from alignedreid.features.python_ref import python_features
from alignedreid.foundation.runlog import stage_logging

with stage_logging(snakemake.log[0], "features_python", snakemake.output) as log:
    p = snakemake.params
    n = python_features(snakemake.input.ckpt, snakemake.input.manifest, snakemake.output[0], p.model, p.sample, p.device_target, p.flip)
    log.info("reference features of %d images on %s", n, p.device_target)
