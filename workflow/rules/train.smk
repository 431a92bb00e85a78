rule fetch_pretrained:
    """ImageNet ResNet checkpoint (URL or path; cached, checksummed) -> backbone-only checkpoint."""
    input:
        code=script_code("fetch_pretrained.py"),
    output:
        ckpt="results/pretrained/backbone.ckpt",
        info="results/pretrained/info.json",
    log:
        "results/logs/fetch_pretrained.log",
    benchmark:
        "results/benchmarks/fetch_pretrained.tsv"
    params:
        pretrained=config["pretrained"],
        depth=config["model"]["depth"],
    script:
        "../scripts/fetch_pretrained.py"


if config["model"]["checkpoint"]:

    rule import_checkpoint:
        """model.checkpoint given: check that it fits the configured network and use it instead of training."""
        input:
            ckpt=config["model"]["checkpoint"],
            code=script_code("import_checkpoint.py"),
        output:
            model="results/train/model.ckpt",
            log_csv="results/train/log.csv",
            summary="results/train/train_summary.json",
        log:
            "results/logs/import_checkpoint.log",
        benchmark:
            "results/benchmarks/import_checkpoint.tsv"
        resources:
            **stage_resources("other"),
        params:
            model=config["model"],
            out_dir=lambda wildcards, output: str(Path(output.model).parent),
        script:
            "../scripts/import_checkpoint.py"

else:

    rule train:
        """AlignedReID++ training: one device in-process, or N ranks via msrun / rank table."""
        input:
            train="results/data/train.csv",
            query="results/data/query.csv",
            gallery="results/data/gallery.csv",
            pretrained=pretrained_input,
            device=device_checked(),
            code=script_code("train.py", "training/worker.py", "training/slurm_node.py"),
        output:
            model="results/train/model.ckpt",
            log_csv="results/train/log.csv",
            summary="results/train/train_summary.json",
        log:
            "results/logs/train.log",
        benchmark:
            "results/benchmarks/train.tsv"
        threads: config["train"]["threads"]
        resources:
            **stage_resources("train"),
            **train_cluster_resources(),
        params:
            model=config["model"],
            train=config["train"],
            out_dir=lambda wildcards, output: str(Path(output.model).parent),
        script:
            "../scripts/train.py"
