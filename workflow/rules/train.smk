rule fetch_pretrained:
    """ImageNet ResNet checkpoint (URL or path; cached, checksummed) -> backbone-only checkpoint."""
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
        code=script_code("fetch_pretrained.py"),
    script:
        "../scripts/fetch_pretrained.py"


if config["model"]["checkpoint"]:

    rule import_checkpoint:
        """model.checkpoint given: check that it fits the configured network and use it instead of training."""
        input:
            ckpt=config["model"]["checkpoint"],
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
            code=script_code("import_checkpoint.py"),
        script:
            "../scripts/import_checkpoint.py"

else:

    rule train:
        """AlignedReID++ training: one device in-process, or N ranks via msrun / rank table."""
        input:
            train="results/data/train.csv",
            pretrained=pretrained_input,
            device=device_checked(),
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
            code=training_code(),
        script:
            "../scripts/train.py"


if QUICK_EVAL:

    rule quick_eval:
        """Quick global mAP of the network before and after training on a fixed subset (train.quick_eval): an indicator, after train."""
        input:
            model="results/train/model.ckpt",
            query="results/data/query.csv",
            gallery="results/data/gallery.csv",
            pretrained=pretrained_input,
        output:
            "results/train/quick_eval.json",
        log:
            "results/logs/quick_eval.log",
        benchmark:
            "results/benchmarks/quick_eval.tsv"
        threads: config["train"]["threads"]
        resources:
            **stage_resources("other"),
            **device_resources(1),
        params:
            model=config["model"],
            train={k: config["train"][k] for k in ("device_target", "device_id", "seed", "execution")},
            code=script_code("quick_eval.py"),
        script:
            "../scripts/quick_eval.py"
