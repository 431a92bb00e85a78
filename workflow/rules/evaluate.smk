rule evaluate:
    """Feature files -> global / global+local (DMLI) distances, re-ranking, CMC/mAP."""
    input:
        query=f"results/features/{config['evaluation']['feature_source']}/query.npz",
        gallery=f"results/features/{config['evaluation']['feature_source']}/gallery.npz",
        code=package_sources("evaluation", "contracts.py"),
    output:
        metrics="results/eval/metrics.json",
        per_query="results/eval/per_query.csv",
    log:
        "results/logs/evaluate.log",
    benchmark:
        "results/benchmarks/evaluate.tsv"
    threads: config["evaluation"]["threads"]
    resources:
        **stage_resources("evaluate"),
    params:
        evaluation=config["evaluation"],
    script:
        "../scripts/evaluate.py"
