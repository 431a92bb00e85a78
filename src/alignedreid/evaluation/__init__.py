"""Evaluation: Market-1501 CMC/mAP, DMLI local distance, k-reciprocal re-ranking.

The three public functions are a contract (docs/architecture.md §4): NumPy in, NumPy out.
"""

from .local import local_distance
from .ranking import rank
from .rerank import re_ranking

__all__ = ["rank", "re_ranking", "local_distance"]
