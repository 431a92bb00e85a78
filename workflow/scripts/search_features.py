"""Snakemake adapter for alignedreid.search.cache.cached_features (one shard of a search folder)."""

from alignedreid.data.manifests import read_manifest
from alignedreid.foundation.runlog import exit_without_teardown, stage_logging
from alignedreid.search.cache import cached_features
from alignedreid.serving.program_settings import ProgramSettings
from alignedreid.serving.shards import shard_rows

with stage_logging(snakemake.log[0], "search_features", snakemake.output) as log:
    i, p = snakemake.input, snakemake.params
    settings = ProgramSettings.from_param(p.program)
    rows = shard_rows(len(read_manifest(i.manifest)), p.shard["shards"], p.shard["batch"])[p.shard["index"]]
    info = cached_features(i.manifest, snakemake.output[0], p.cache_dir, i.bin, i.model, settings, snakemake.threads, p.dtype, rows)
    log.info("shard %d of %d (rows %d-%d): %s", p.shard["index"] + 1, p.shard["shards"], rows.start, rows.stop - 1, info)
exit_without_teardown()  # the outputs are in place: skip the interpreter's teardown (about 0.4 s per shard)
