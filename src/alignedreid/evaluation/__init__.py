"""Evaluation: Market-1501 CMC/mAP, DMLI local distance, k-reciprocal re-ranking.

The three public functions are a contract (docs/architecture.md §4): NumPy in, NumPy out. They are
loaded on first use, so that importing one module of this package (evaluation.distance, say) does
not load the others -- nor make every rule that does depend on all of them (code_closure reads
``_LAZY_EXPORTS`` to follow ``from alignedreid.evaluation import rank`` to evaluation/ranking.py).
"""

from importlib import import_module

LAYER = 3  # docs/architecture.md §2: imports go to this layer and the ones below

_LAZY_EXPORTS = {"rank": "ranking", "re_ranking": "rerank", "local_distance": "local"}
__all__ = ["rank", "re_ranking", "local_distance"]


def __getattr__(name: str):
    if name in _LAZY_EXPORTS:
        return getattr(import_module(f".{_LAZY_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
