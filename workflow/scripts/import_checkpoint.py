"""Snakemake adapter for alignedreid.training.imported.import_checkpoint."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.training.imported import import_checkpoint

with stage_logging(snakemake.log[0], "import_checkpoint", snakemake.output):
    m = snakemake.params.model
    import_checkpoint(snakemake.input.ckpt, m["depth"], m["height"], m["width"], snakemake.params.out_dir)
