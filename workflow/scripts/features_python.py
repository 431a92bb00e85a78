"""Snakemake adapter for alignedreid.features.python_ref.python_features."""

from alignedreid.features.python_ref import python_features
from alignedreid.model import resolve_conv_impl
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "features_python", snakemake.output) as log:
    m, p = snakemake.params.model, snakemake.params
    n = python_features(
        snakemake.input.ckpt,
        m["depth"],
        snakemake.input.manifest,
        snakemake.output[0],
        m["height"],
        m["width"],
        resolve_conv_impl(m["conv_impl"], p.device_target),
        sample=p.sample,
        device_target=p.device_target,
        flip=p.flip,
    )
    log.info("reference features of %d images on %s", n, p.device_target)
