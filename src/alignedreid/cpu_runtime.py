"""CPU runtime settings that must be in the environment before MindSpore's oneDNN kernels start.

On AVX-512 CPUs, oneDNN (MindSpore 2.10's CPU convolution library) picks a reference kernel for
MindSpore's plain tensor layouts: convolutions run at 0.4-0.6 GFLOP/s. Capped at AVX2 it uses its
JIT GEMM kernels (20-33 GFLOP/s per convolution; see docs/architecture.md, CPU performance). On
CPUs without AVX-512 the cap changes nothing.

:func:`apply_cpu_defaults` runs when the ``alignedreid`` package is imported (package
``__init__``), so every process of the pipeline gets it as long as it imports ``alignedreid``
before ``mindspore``: Snakemake rule scripts, the in-process launcher, msrun and rank-table
workers (which also inherit the launcher's environment), benchmarks. A value the user already set
wins: ``ONEDNN_MAX_CPU_ISA=ALL`` restores oneDNN's own choice.
"""

from __future__ import annotations

import os

CPU_ENV_DEFAULTS = {"ONEDNN_MAX_CPU_ISA": "AVX2"}


def apply_cpu_defaults(env=None) -> dict:
    """Set each default that is not already set in ``env`` (default: os.environ); return the values in force."""
    env = os.environ if env is None else env
    for key, value in CPU_ENV_DEFAULTS.items():
        env.setdefault(key, value)
    return {key: env[key] for key in CPU_ENV_DEFAULTS}
