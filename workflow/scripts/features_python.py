"""Snakemake adapter for alignedreid.features.python_ref.python_features (one shard of a split)."""

from alignedreid.features.python_ref import python_features
from alignedreid.foundation.runlog import exit_without_teardown, stage_logging

with stage_logging(snakemake.log[0], "features_python", snakemake.output) as log:
    p = snakemake.params
    i = snakemake.input
    n = python_features(i.ckpt, i.manifest, snakemake.output[0], p.model, p.sample, p.device_target, p.flip, tuple(p.shard))
    log.info("reference features of %d images on %s (shard %d of %d)", n, p.device_target, p.shard[0] + 1, p.shard[1])
if snakemake.params.device_target == "CPU":  # a GPU or Ascend device is released by MindSpore's own teardown
    exit_without_teardown()  # the outputs are in place: skip the interpreter's teardown (about 0.4 s per shard)
