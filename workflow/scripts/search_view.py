"""Snakemake adapter for alignedreid.search.cache.concat_views."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.search.cache import concat_views

with stage_logging(snakemake.log[0], "search_view", snakemake.output) as log:
    n = concat_views(snakemake.input, snakemake.output[0])
    log.info("%d images from %d shard views", n, len(snakemake.input))
