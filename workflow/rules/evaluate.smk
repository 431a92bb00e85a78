# infer.precision int8/bf16: the fp32 C++ features of the same model, evaluated beside
REFERENCE_STORES = expand("results/features/{source}/{split}.store", source=EVALUATED_SOURCES[1:], split=SPLITS)


rule evaluation_store:
    """A split's feature file -> the feature store evaluate maps: global features float32, stripes at
    unit length in evaluation.stripe_dtype (none when no evaluated variant reads them)."""
    input:
        "results/features/{source}/{split}.npz",
    output:
        directory("results/features/{source}/{split}.store"),
    log:
        "results/logs/evaluation_store_{source}_{split}.log",
    benchmark:
        "results/benchmarks/evaluation_store_{source}_{split}.tsv"
    wildcard_constraints:
        source="cpp|cpp_fp32|python",
    resources:
        **stage_resources("other"),
    params:
        stripe_dtype=config["evaluation"]["stripe_dtype"],
        local=any(v.startswith("global_local") for v in config["evaluation"]["variants"]),
        code=script_code("evaluation_store.py"),
    script:
        "../scripts/evaluation_store.py"


rule evaluate:
    """Evaluation stores -> global / global+local (DMLI) distances, re-ranking, CMC/mAP."""
    input:
        query=f"results/features/{SOURCE}/query.store",
        gallery=f"results/features/{SOURCE}/gallery.store",
        reference=REFERENCE_STORES,
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
        precision=PRECISION if SOURCE == "cpp" else "fp32",
        max_map_drop=config["infer"]["max_map_drop"],
        code=script_code("evaluate.py"),
    script:
        "../scripts/evaluate.py"
