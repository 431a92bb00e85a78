"""Snakemake adapter for alignedreid.model.pretrained.prepare_backbone_checkpoint."""

from alignedreid.foundation.io_utils import write_json
from alignedreid.foundation.runlog import stage_logging
from alignedreid.model.pretrained import prepare_backbone_checkpoint

with stage_logging(snakemake.log[0], "fetch_pretrained", snakemake.output):
    cfg = snakemake.params.pretrained
    info = prepare_backbone_checkpoint(cfg, snakemake.params.depth, snakemake.output.ckpt, cfg["cache_dir"])
    write_json(snakemake.output.info, info)
