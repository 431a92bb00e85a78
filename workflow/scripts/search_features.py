"""Snakemake adapter for alignedreid.search.cached_features."""

from alignedreid.runlog import stage_logging
from alignedreid.search import cached_features

with stage_logging(snakemake.log[0], "search_features", snakemake.output) as log:
    p = snakemake.params
    info = cached_features(
        snakemake.input.manifest,
        snakemake.output[0],
        p.cache_dir,
        snakemake.input.bin,
        snakemake.input.model,
        p.height,
        p.width,
        p.batch,
        snakemake.threads,
        p.precision,
        p.hint,
        p.flip,
    )
    log.info("%s", info)
