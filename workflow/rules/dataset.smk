rule prepare_dataset:
    """The training dataset (a release folder/zip of dataset.source, or the synthetic generator) -> validated manifests."""
    input:
        dataset_inputs(config["dataset"]),
        device=device_checked(),
    output:
        train="results/data/train.csv",
        query="results/data/query.csv",
        gallery="results/data/gallery.csv",
        summary="results/data/summary.json",
    log:
        "results/logs/prepare_dataset.log",
    benchmark:
        "results/benchmarks/prepare_dataset.tsv"
    threads: config["dataset"]["workers"]
    resources:
        **stage_resources("other"),
    params:
        dataset=dataset_params(config["dataset"]),
        work_dir=lambda wildcards, output: str(Path(output.train).parent),
        code=script_code("prepare_dataset.py"),
    script:
        "../scripts/prepare_dataset.py"


if CROSS_DOMAIN:

    rule prepare_eval_dataset:
        """Cross-domain: the evaluation dataset (evaluation.dataset) -> its own validated manifests."""
        input:
            dataset_inputs(config["evaluation"]["dataset"]),
            device=device_checked(),
        output:
            train="results/data/eval/train.csv",
            query="results/data/eval/query.csv",
            gallery="results/data/eval/gallery.csv",
            summary="results/data/eval/summary.json",
        log:
            "results/logs/prepare_eval_dataset.log",
        benchmark:
            "results/benchmarks/prepare_eval_dataset.tsv"
        threads: config["evaluation"]["dataset"]["workers"]
        resources:
            **stage_resources("other"),
        params:
            dataset=dataset_params(config["evaluation"]["dataset"]),
            work_dir=lambda wildcards, output: str(Path(output.train).parent),
            code=script_code("prepare_dataset.py"),
        script:
            "../scripts/prepare_dataset.py"
