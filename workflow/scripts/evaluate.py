"""Snakemake adapter for alignedreid.evaluation.run.run_evaluation."""

from alignedreid.evaluation.run import run_evaluation
from alignedreid.foundation.runlog import stage_logging

with stage_logging(snakemake.log[0], "evaluate", snakemake.output):
    ref = list(snakemake.input.reference)
    run_evaluation(
        snakemake.input.query,
        snakemake.input.gallery,
        snakemake.output.metrics,
        snakemake.output.per_query,
        snakemake.params.evaluation,
        snakemake.threads,
        reference=(ref[0], ref[1]) if ref else None,
        precision=snakemake.params.precision,
        max_map_drop=snakemake.params.max_map_drop,
    )
