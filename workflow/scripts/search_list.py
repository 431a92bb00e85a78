"""Snakemake adapter for alignedreid.search.listing.list_images."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.search.listing import list_images

with stage_logging(snakemake.log[0], "search_list", snakemake.output):
    list_images(snakemake.params.folder, snakemake.output.manifest, snakemake.output.skipped, snakemake.wildcards.role)
