"""Snakemake adapter for alignedreid.search.cache.cached_features."""

from alignedreid.foundation.runlog import stage_logging
from alignedreid.search.cache import cached_features
from alignedreid.serving.program_settings import ProgramSettings

with stage_logging(snakemake.log[0], "search_features", snakemake.output) as log:
    i, p = snakemake.input, snakemake.params
    settings = ProgramSettings.from_param(p.program)
    info = cached_features(i.manifest, snakemake.output[0], p.cache_dir, i.bin, i.model, settings, snakemake.threads, p.dtype)
    log.info("%s", info)
