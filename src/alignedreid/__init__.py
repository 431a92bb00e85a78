"""AlignedReID++ person re-identification pipeline (see docs/architecture.md for the layout)."""

from .foundation.cpu_runtime import apply_cpu_defaults

apply_cpu_defaults()  # before any module of the package imports MindSpore

__version__ = "0.1.0"
