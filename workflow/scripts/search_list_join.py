"""Snakemake adapter for alignedreid.search.listing.join_listings."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.search.listing import join_listings

with stage_logging(snakemake.log[0], "search_list_join", snakemake.output):
    i, o = snakemake.input, snakemake.output
    join_listings(i.manifests, i.skipped, o.manifest, o.skipped, snakemake.params.folder, snakemake.wildcards.role)
