"""Snakemake adapter for alignedreid.report.write_report."""
from alignedreid.report import write_report
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "report"):
    inputs = {k: v for k, v in snakemake.input.items() if k != "code"}
    inputs.update({f"infer_log_{s}": p for s, p in snakemake.params.infer_logs.items()})
    inputs["bench_dir"] = "results/benchmarks"
    write_report(snakemake.output[0], inputs=inputs, config=snakemake.params.config)
