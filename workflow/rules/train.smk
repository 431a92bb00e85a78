rule fetch_pretrained:
    """ImageNet ResNet checkpoint (URL or path; cached, checksummed) -> backbone-only checkpoint."""
    input:
        code=package_sources("pretrained.py", "download.py", "model.py"),
    output:
        ckpt="results/pretrained/backbone.ckpt",
        info="results/pretrained/info.json",
    params:
        pretrained=config["pretrained"],
        depth=config["model"]["depth"],
    log:
        "results/logs/fetch_pretrained.log",
    benchmark:
        "results/benchmarks/fetch_pretrained.tsv"
    script:
        "../scripts/fetch_pretrained.py"



rule train:
    """AlignedReID++ training: one device in-process, or N ranks via msrun / rank table."""
    input:
        train="results/data/train.csv",
        query="results/data/query.csv",
        gallery="results/data/gallery.csv",
        pretrained=pretrained_input,
        code=package_sources("train.py", "train_cli.py", "train_node.py", "launch.py", "model.py", "losses.py", "augment.py", "pipeline.py", "sampler.py", "lr_schedule.py"),
    output:
        model="results/train/model.ckpt",
        log_csv="results/train/log.csv",
        summary="results/train/train_summary.json",
    params:
        model=config["model"],
        train=config["train"],
        out_dir=lambda wildcards, output: str(Path(output.model).parent),
    threads: config["train"]["threads"]
    resources:
        **stage_resources("train"),
        **train_cluster_resources(),
    log:
        "results/logs/train.log",
    benchmark:
        "results/benchmarks/train.tsv"
    script:
        "../scripts/train.py"
