rule report:
    """Everything the run produced -> one self-contained HTML page."""
    input:
        summary="results/data/summary.json",
        eval_summary=f"{EVAL_DATA}/summary.json",
        gallery=f"{EVAL_DATA}/gallery.csv",
        train_summary="results/train/train_summary.json",
        train_log="results/train/log.csv",
        quick_eval="results/train/quick_eval.json" if QUICK_EVAL else [],
        model="results/train/model.ckpt",
        mindir="results/export/model.mindir",
        onnx="results/export/model.onnx",
        quantized=["results/quantize/model.xml", "results/quantize/model.bin"] if PRECISION == "int8" else [],
        calibration="results/quantize/calibration.json" if PRECISION == "int8" else [],
        parity="results/features/parity.json",
        metrics="results/eval/metrics.json",
        per_query="results/eval/per_query.csv",
        benchmarks=[f"results/benchmarks/{s}.tsv" for s in benchmarked_stages()],
        stage_logs=[f"results/logs/{s}.log" for s in benchmarked_stages()],
        template=str(PKG / "report" / "templates" / "report.html.j2"),
    output:
        "results/report.html",
    log:
        "results/logs/report.log",
    params:
        config=config,
        code=script_code("report.py"),
    script:
        "../scripts/report.py"
