"""Snakemake adapter for alignedreid.training.quick_eval.quick_evaluation."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.training.quick_eval import quick_evaluation

with stage_logging(snakemake.log[0], "quick_eval", snakemake.output):
    quick_evaluation(
        snakemake.input.model,
        snakemake.input.query,
        snakemake.input.gallery,
        snakemake.input.pretrained[0] if snakemake.input.pretrained else None,
        snakemake.params.model,
        snakemake.params.train,
        snakemake.output[0],
    )
