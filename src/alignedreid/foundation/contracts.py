"""Constants of the file and API contracts shared by several stages (docs/architecture.md §3-§4).

Each value is defined here once; the stages, the report, the tests and the benchmarks import it.
"""

from __future__ import annotations

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


def _schema_default(*path: str):
    """The schema's default of one key (e.g. "evaluation", "rerank", "k1"): the schema owns the recipe's
    values; the §4 API functions take these as their defaults (docs/architecture.md §4)."""
    from .config import load_schema

    node = load_schema()
    for key in path:
        node = node["properties"][key]
    return node["default"]


# k-reciprocal re-ranking parameters of the recipe and the CMC length, read from the schema.
RERANK_K1, RERANK_K2, RERANK_LAMBDA = (_schema_default("evaluation", "rerank", k) for k in ("k1", "k2", "lambda"))
MAX_RANK = _schema_default("evaluation", "max_rank")

# Largest |C++ feature - Python feature| the parity stage accepts.
PARITY_TOLERANCE = 1e-4
