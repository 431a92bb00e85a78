rule report:
    """Everything the run produced -> one self-contained HTML page."""
    input:
        summary="results/data/summary.json",
        gallery="results/data/gallery.csv",
        train_summary="results/train/train_summary.json",
        train_log="results/train/log.csv",
        model="results/train/model.ckpt",
        mindir="results/export/model.mindir",
        onnx="results/export/model.onnx",
        parity="results/features/parity.json",
        metrics="results/eval/metrics.json",
        per_query="results/eval/per_query.csv",
        code=package_sources("report.py", "runlog.py"),
    output:
        "results/report.html",
    params:
        config=config,
        infer_logs={s: f"results/logs/infer_cpp_{s}.log" for s in ("query", "gallery")},
    log:
        "results/logs/report.log",
    script:
        "../scripts/report.py"
