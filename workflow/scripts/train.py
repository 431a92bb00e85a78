"""Snakemake adapter for alignedreid.training.launch.run_training."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.training.job import TrainJob
from alignedreid.training.launch import run_training

with stage_logging(snakemake.log[0], "train", snakemake.output):
    job = TrainJob.from_config(
        {"model": snakemake.params.model, "train": snakemake.params.train},
        snakemake.input.train,
        snakemake.params.out_dir,
        pretrained=snakemake.input.pretrained[0] if snakemake.input.pretrained else None,
    )
    run_training(job)
