"""Snakemake adapter for alignedreid.cpp_io.python_features."""
from alignedreid.cpp_io import python_features
from alignedreid.runlog import stage_logging

with stage_logging(snakemake.log[0], "features_python"):
    m = snakemake.params.model
    python_features(snakemake.input.ckpt, m["depth"], snakemake.input.manifest, snakemake.output[0], m["height"], m["width"])
