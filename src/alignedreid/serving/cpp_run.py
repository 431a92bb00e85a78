"""One run of the C++ program (docs/architecture.md §3): its inputs in, its raw outputs out, in a folder
that appears only complete.

Standard library only, so that an ``infer_cpp`` job (one per shard, ``infer.shards``) starts in about
0.1 s instead of the 0.5 s NumPy, pandas and the feature-file code cost (``cpp_program`` reads the
outputs; this module only runs the program)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from ..foundation.cpu_runtime import program_env
from ..foundation.errors import PipelineError
from ..foundation.io_utils import atomic_directory
from .program_settings import ProgramSettings

log = logging.getLogger(__name__)

RAN_ON = "inputs.json"  # written beside the outputs: how many images the program read


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512_BF16 or AMX-BF16), as OpenVINO needs for bf16."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def _count_inputs(inputs: Path, settings: ProgramSettings) -> int:
    if inputs.is_file():
        return inputs.stat().st_size // (settings.height * settings.width * 3)
    return sum(1 for _ in inputs.glob("*.bin"))


def run_cpp_program(exe, model, inputs, output_dir, settings: ProgramSettings, threads: int) -> None:
    """Run the C++ program over ``inputs`` (a packed file or a folder of .bin files) with ``settings``; its
    outputs land in a temporary folder that replaces ``output_dir`` only when the program succeeded, so a
    killed run leaves nothing a later step reads. The program's own output (with its images/s line) goes
    to this stage's log. It runs with the CPU's own ISA (``cpu_runtime.program_env``)."""
    if settings.precision == "bf16" and not cpu_has_bf16():
        raise PipelineError(
            "infer.precision bf16: this CPU has no bfloat16 instructions (avx512_bf16 or amx_bf16 in /proc/cpuinfo); use fp32 or int8"
        )
    with atomic_directory(output_dir) as tmp:
        images = _count_inputs(Path(inputs), settings)
        (tmp / RAN_ON).write_text(json.dumps({"images": images, "input": str(inputs)}))
        if not images:  # an empty shard: nothing to run
            log.info("%s holds no image: nothing to run", inputs)
            return
        source = ["--input", str(inputs)] if Path(inputs).is_file() else ["--input_dir", str(inputs)]
        cmd = [str(exe), "--model", str(model), *source, "--output_dir", str(tmp), *settings.arguments(threads)]
        env = program_env()
        log.info("running %s (ONEDNN_MAX_CPU_ISA %s)", " ".join(cmd), env.get("ONEDNN_MAX_CPU_ISA", "unset: the CPU's own"))
        sys.stderr.flush()
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.STDOUT, env=env)
        if proc.returncode != 0:
            raise PipelineError(f"{exe} exited with status {proc.returncode} on {inputs}; its output is in this stage's log")
