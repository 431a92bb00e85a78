rule prepare_dataset:
    """Market-1501 folder/zip or synthetic generator -> validated manifests."""
    input:
        dataset_inputs,
        code=package_sources("data", "io_utils.py", "contracts.py"),
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
        dataset=config["dataset"],
        work_dir=lambda wildcards, output: str(Path(output.train).parent),
    script:
        "../scripts/prepare_dataset.py"
