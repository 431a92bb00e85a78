"""Snakemake adapter for alignedreid.report.write_report."""
from alignedreid.report import write_report
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "report"):
    write_report(
        snakemake.output[0],
        inputs=dict(snakemake.input.items()),
        config=snakemake.params.config,
        pending=list(snakemake.params.pending),
    )
