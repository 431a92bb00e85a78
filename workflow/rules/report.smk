# Stages of DESIGN.md §1 that are not wired into this DAG yet; the report lists them.
PENDING_STAGES = ["export", "build_infer", "preprocess", "infer_cpp", "features", "evaluate"]


rule report:
    """Everything the run produced -> one self-contained HTML page."""
    input:
        summary="results/data/summary.json",
        train_summary="results/train/train_summary.json",
        train_log="results/train/log.csv",
        code=package_sources("report.py"),
    output:
        "results/report.html",
    params:
        config=config,
        pending=PENDING_STAGES,
    log:
        "results/logs/report.log",
    script:
        "../scripts/report.py"
