"""Constants of the file and API contracts shared by several stages (docs/architecture.md §3-§4).

Each value is defined here once; the stages, the report, the tests and the benchmarks import it.
"""

from __future__ import annotations

from pathlib import Path

JUNK_PID = -1  # gallery images the protocol ignores (Market-1501 file names starting with "-1")
DISTRACTOR_PID = 0  # gallery images of nobody in the query set (file names starting with "0000")

# The four evaluated distance variants, in report order, with their labels.
VARIANTS = ("global", "global_local", "global_rerank", "global_local_rerank")
VARIANT_LABELS = {
    "global": "global",
    "global_local": "global + local (DMLI)",
    "global_rerank": "global, re-ranked",
    "global_local_rerank": "global + local, re-ranked",
}


def _rerank_defaults() -> tuple[int, int, float]:
    """The schema's evaluation.rerank defaults (the recipe's k1, k2, lambda): the schema owns them,
    the re-ranking functions take them as their defaults (docs/architecture.md §4)."""
    import yaml

    schema = yaml.safe_load((Path(__file__).resolve().parent / "schema.yaml").read_text())
    rr = schema["properties"]["evaluation"]["properties"]["rerank"]["properties"]
    return rr["k1"]["default"], rr["k2"]["default"], rr["lambda"]["default"]


# k-reciprocal re-ranking parameters of the recipe, read from the schema.
RERANK_K1, RERANK_K2, RERANK_LAMBDA = _rerank_defaults()

# Largest |C++ feature - Python feature| the parity stage accepts.
PARITY_TOLERANCE = 1e-4
