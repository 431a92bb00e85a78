"""Snakemake adapter for alignedreid.launch.run_training."""
from alignedreid.launch import run_training
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "train"):
    run_training({
        "model": dict(snakemake.params.model),
        "train": dict(snakemake.params.train),
        "train_csv": snakemake.input.train,
        "query_csv": snakemake.input.query,
        "gallery_csv": snakemake.input.gallery,
        "pretrained": snakemake.input.pretrained[0] if snakemake.input.pretrained else None,
        "out_dir": snakemake.params.out_dir,
    })
