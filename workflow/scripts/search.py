"""Snakemake adapter for alignedreid.search.ranking.search and alignedreid.search.page.write_search_report."""

import json

from alignedreid.foundation.errors import PipelineError
from alignedreid.foundation.kernel_threads import limit_kernel_threads
from alignedreid.foundation.runlog import stage_logging
from alignedreid.search.page import write_search_report
from alignedreid.search.ranking import search

with stage_logging(snakemake.log[0], "search", snakemake.output):
    limit_kernel_threads(snakemake.threads)
    verification = json.loads(open(snakemake.input.metrics).read()).get("verification")
    if not verification:
        raise PipelineError(f"{snakemake.input.metrics}: no verification threshold (run evaluate with this version)")
    _, n_gallery = search(
        snakemake.input.queries, snakemake.input.gallery, verification, snakemake.output.matches, snakemake.params.top_k, snakemake.params.shortlist
    )
    write_search_report(snakemake.output.matches, verification, snakemake.output.report, n_gallery, snakemake.input.skipped)
