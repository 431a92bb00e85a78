"""Snakemake adapter for alignedreid.search.listing.list_images (one shard of a search folder)."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.search.listing import list_images

with stage_logging(snakemake.log[0], "search_list", snakemake.output):
    o, p = snakemake.output, snakemake.params
    list_images(p.folder, o.manifest, o.skipped, snakemake.wildcards.role, tuple(p.shard))
