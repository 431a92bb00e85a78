"""Snakemake adapter for alignedreid.serving.cpp_program.preprocess (one shard of a split)."""

from alignedreid.data.manifests import read_manifest
from alignedreid.foundation.runlog import exit_without_teardown, stage_logging
from alignedreid.serving.cpp_program import preprocess
from alignedreid.serving.shards import shard_rows

with stage_logging(snakemake.log[0], "preprocess", snakemake.output) as log:
    p = snakemake.params
    manifest = snakemake.input.manifest
    rows = shard_rows(len(read_manifest(manifest)), p.shard["shards"], p.shard["batch"])[p.shard["index"]]
    n = preprocess(manifest, snakemake.output[0], *p.size, workers=snakemake.threads, layout=p.layout, rows=rows)
    log.info("wrote %d inputs (%s): rows %d-%d, shard %d of %d", n, p.layout, rows.start, rows.stop - 1, p.shard["index"] + 1, p.shard["shards"])
exit_without_teardown()  # the outputs are in place: skip the interpreter's teardown (about 0.4 s per shard)
