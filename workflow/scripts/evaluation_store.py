"""Snakemake adapter for alignedreid.evaluation.stored.write_evaluation_store."""

from alignedreid.evaluation.stored import write_evaluation_store
from alignedreid.foundation.runlog import stage_logging

with stage_logging(snakemake.log[0], "evaluation_store", snakemake.output) as log:
    n = write_evaluation_store(snakemake.input[0], snakemake.output[0], snakemake.params.stripe_dtype, snakemake.params.local)
    log.info("%d images; stripes %s", n, snakemake.params.stripe_dtype if snakemake.params.local else "not stored (no local variant)")
