"""CPU runtime settings that must be in the environment before MindSpore's oneDNN kernels start.

On AVX-512 CPUs, oneDNN (MindSpore 2.10's CPU convolution library) picks a reference kernel for
MindSpore's plain tensor layouts: convolutions run at 0.4-0.6 GFLOP/s. Capped at AVX2 it uses its
JIT GEMM kernels (20-33 GFLOP/s per convolution; see docs/architecture.md, CPU performance). On
CPUs without AVX-512 the cap changes nothing.

:func:`apply_cpu_defaults` runs when the ``alignedreid`` package is imported (package
``__init__``), so every process of the pipeline gets it as long as it imports ``alignedreid``
before ``mindspore``: Snakemake rule scripts, the in-process launcher, msrun and rank-table
workers (which also inherit the launcher's environment), benchmarks. A value the user already set
wins: ``ONEDNN_MAX_CPU_ISA=ALL`` restores oneDNN's own choice. The cap is for MindSpore only: the
C++ program runs with :func:`program_env`, which removes what the package set (OpenVINO honours the
same variable, and its int8 and bf16 kernels need the CPU's AVX-512 VNNI / bf16).
"""

from __future__ import annotations

import os

CPU_ENV_DEFAULTS = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
# names of the variables the package set itself (not the user), inherited by child processes, so
# that programs which are not MindSpore can be started without them (see program_env)
SET_BY_PACKAGE = "ALIGNEDREID_CPU_DEFAULTS"


def apply_cpu_defaults(env=None) -> dict:
    """Set each default that is not already set in ``env`` (default: os.environ); return the values in force."""
    env = os.environ if env is None else env
    ours = set(filter(None, env.get(SET_BY_PACKAGE, "").split(",")))
    for key, value in CPU_ENV_DEFAULTS.items():
        if key not in env:
            env[key] = value
            ours.add(key)
    if ours:
        env[SET_BY_PACKAGE] = ",".join(sorted(ours))
    return {key: env[key] for key in CPU_ENV_DEFAULTS}


def program_env(env=None) -> dict:
    """The environment for a program that is not MindSpore (the C++ program's OpenVINO, ONNX Runtime):
    ``env`` without the caps this package set for MindSpore's sake, so it uses the CPU's own ISA
    (AVX-512, VNNI, bf16); a value the user set is kept."""
    env = dict(os.environ if env is None else env)
    for key in filter(None, env.pop(SET_BY_PACKAGE, "").split(",")):
        env.pop(key, None)
    return env
