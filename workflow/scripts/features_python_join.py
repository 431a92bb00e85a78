"""Snakemake adapter for alignedreid.features.files.join_feature_files."""

from alignedreid.data.manifests import read_manifest
from alignedreid.features.files import join_feature_files
from alignedreid.foundation.runlog import stage_logging

with stage_logging(snakemake.log[0], "features_python_join", snakemake.output) as log:
    n = join_feature_files(snakemake.input.shards, snakemake.output[0], len(read_manifest(snakemake.input.manifest)))
    log.info("%d rows from %d shard files", n, len(snakemake.input.shards))
