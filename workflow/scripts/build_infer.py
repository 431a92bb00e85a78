"""Snakemake adapter: CMake build of ascend310_infer/ into results/infer/build."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from alignedreid.foundation.errors import PipelineError
from alignedreid.foundation.runlog import stage_logging

with stage_logging(snakemake.log[0], "build_infer", snakemake.output) as log:
    out = Path(snakemake.output[0])
    build = out.parent.parent / f"build-{snakemake.params.backend}"
    src = Path(os.path.commonpath([os.path.abspath(f) for f in snakemake.input.sources]))  # the ascend310_infer/ folder
    cmd = ["bash", str(src / "build.sh"), snakemake.params.backend, str(build.resolve())]
    log.info("running %s", " ".join(cmd))
    # this job's Python (the project's environment) finds OpenVINO, whatever python3 PATH holds
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.STDOUT, env={**os.environ, "PYTHON": sys.executable})
    if proc.returncode != 0:
        raise PipelineError(f"building ascend310_infer failed (exit {proc.returncode}); see {snakemake.log[0]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(build / "aligned_infer", out)
