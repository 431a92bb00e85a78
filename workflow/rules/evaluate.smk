rule evaluate:
    """Feature files -> global / global+local (DMLI) distances, re-ranking, CMC/mAP."""
    input:
        query=f"results/features/{config['evaluation']['feature_source']}/query.npz",
        gallery=f"results/features/{config['evaluation']['feature_source']}/gallery.npz",
        # infer.precision int8/bf16: the fp32 C++ features of the same model, evaluated beside
        reference=(
            expand("results/features/cpp_fp32/{split}.npz", split=SPLITS) if COMPARE_FP32 and config["evaluation"]["feature_source"] == "cpp" else []
        ),
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
        precision=PRECISION if config["evaluation"]["feature_source"] == "cpp" else "fp32",
        max_map_drop=config["infer"]["max_map_drop"],
        code=script_code("evaluate.py"),
    script:
        "../scripts/evaluate.py"
