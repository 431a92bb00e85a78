"""Snakemake adapter for alignedreid.report.page.write_report."""

from pathlib import Path

from alignedreid.foundation.runlog import stage_logging
from alignedreid.report.page import shard_logs, write_report

with stage_logging(snakemake.log[0], "report", snakemake.output):
    files = {
        k: snakemake.input[k]
        for k in ("summary", "eval_summary", "gallery", "train_summary", "train_log", "model", "mindir", "onnx", "parity", "metrics", "per_query")
    }
    if snakemake.input.quick_eval:
        files["quick_eval"] = snakemake.input.quick_eval
    if snakemake.input.calibration:
        files["calibration"] = snakemake.input.calibration
    logs = {Path(p).stem: p for p in snakemake.input.stage_logs}
    precision = snakemake.params.config["infer"]["precision"]
    models = {"fp32": [snakemake.input.onnx]}
    models[precision] = list(snakemake.input.quantized) if precision == "int8" else [snakemake.input.onnx]
    write_report(
        snakemake.output[0],
        inputs=files,
        config=snakemake.params.config,
        benchmarks=list(snakemake.input.benchmarks),
        logs=logs,
        infer_logs={s: shard_logs(logs, f"infer_cpp_{s}") for s in ("query", "gallery")},
        models=models,
    )
