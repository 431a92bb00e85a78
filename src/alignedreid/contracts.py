"""Constants of the file and API contracts shared by several stages (docs/architecture.md §3-§4).

Each value is defined here once; the stages, the report, the tests and the benchmarks import it.
"""

from __future__ import annotations

JUNK_PID = -1  # gallery images the protocol ignores (Market-1501 file names starting with "-1")
DISTRACTOR_PID = 0  # gallery images of nobody in the query set (file names starting with "0000")

# dataset.source values of the real datasets and their names in messages and the report.
DATASET_NAMES = {
    "market1501": "Market-1501",
    "dukemtmc": "DukeMTMC-reID",
    "cuhk03": "CUHK03-NP",
    "msmt17": "MSMT17",
    "folder": "own folder",
}

# The four evaluated distance variants, in report order, with their labels.
VARIANTS = ("global", "global_local", "global_rerank", "global_local_rerank")
VARIANT_LABELS = {
    "global": "global",
    "global_local": "global + local (DMLI)",
    "global_rerank": "global, re-ranked",
    "global_local_rerank": "global + local, re-ranked",
}

# k-reciprocal re-ranking parameters of the recipe (the schema's defaults equal these; a test checks it).
RERANK_K1, RERANK_K2, RERANK_LAMBDA = 20, 6, 0.3

# Largest |C++ feature - Python feature| the parity stage accepts.
PARITY_TOLERANCE = 1e-4
