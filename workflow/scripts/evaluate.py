"""Snakemake adapter for alignedreid.evaluation.run.run_evaluation."""

from alignedreid.evaluation.run import run_evaluation
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "evaluate", snakemake.output):
    run_evaluation(
        snakemake.input.query,
        snakemake.input.gallery,
        snakemake.output.metrics,
        snakemake.output.per_query,
        snakemake.params.evaluation,
        snakemake.threads,
    )
