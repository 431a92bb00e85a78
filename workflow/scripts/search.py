"""Snakemake adapter for alignedreid.search.search and write_search_report."""

import json

from alignedreid.errors import PipelineError
from alignedreid.evaluation.run import limit_kernel_threads
from alignedreid.runlog import stage_logging
from alignedreid.search import search, write_search_report

with stage_logging(snakemake.log[0], "search", snakemake.output):
    limit_kernel_threads(snakemake.threads)
    verification = json.loads(open(snakemake.input.metrics).read()).get("verification")
    if not verification:
        raise PipelineError(f"{snakemake.input.metrics}: no verification threshold (run evaluate with this version)")
    _, n_gallery = search(
        snakemake.input.queries, snakemake.input.gallery, verification, snakemake.output.matches, snakemake.params.top_k, snakemake.params.shortlist
    )
    write_search_report(snakemake.output.matches, verification, snakemake.output.report, n_gallery, snakemake.input.skipped)
