"""Ranking of the search: the evaluation's verification distance, the top-k per query, the same-person decision."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..data.manifests import CSV_ERRORS
from ..evaluation.distance import global_distance, unit_stripes_
from ..evaluation.local import local_distance
from ..evaluation.shortlist import two_stage_global_local
from ..features.files import load_features
from ..foundation.errors import PipelineError
from ..foundation.io_utils import atomic_path

log = logging.getLogger(__name__)
MATCH_COLUMNS = ["query", "rank", "gallery", "distance", "same_person"]


def search_distances(query, gallery, variant: str, shortlist: int | None = None) -> np.ndarray:
    """The evaluation's distance between every query and gallery image (docs/architecture.md §5); with
    ``shortlist`` the local part only on each query's K nearest by the global distance (exact there,
    the rest placed after them)."""
    d = global_distance(query.global_, gallery.global_)
    if variant == "global_local" and shortlist:
        d = two_stage_global_local(d, unit_stripes_(query.local), unit_stripes_(gallery.local), shortlist)
    elif variant == "global_local":
        d += local_distance(unit_stripes_(query.local), unit_stripes_(gallery.local))
    elif variant != "global":
        raise PipelineError(f"search: distance {variant!r} is not global or global_local")
    return d


def search(query_npz, gallery_npz, verification: dict, out_csv, top_k: int, shortlist: int | None = None) -> tuple[pd.DataFrame, int]:
    """matches.csv: for every query its ``top_k`` gallery images, nearest first, with the distance and
    the decision (distance below ``verification['threshold']``)."""
    query, gallery = load_features(query_npz), load_features(gallery_npz)
    variant, threshold = verification["variant"], float(verification["threshold"])
    dist = search_distances(query, gallery, variant, shortlist)
    k = min(top_k, dist.shape[1])
    top = np.argpartition(dist, k - 1, axis=1)[:, :k] if k < dist.shape[1] else np.tile(np.arange(dist.shape[1]), (len(dist), 1))
    rows = []
    for i in range(len(dist)):
        order = top[i][np.lexsort((top[i], dist[i, top[i]]))]  # by distance, ties by gallery order
        for r, j in enumerate(order, start=1):
            rows.append((query.path[i], r, gallery.path[j], float(dist[i, j]), bool(dist[i, j] < threshold)))
    matches = pd.DataFrame(rows, columns=MATCH_COLUMNS)
    with atomic_path(out_csv) as tmp:
        matches.to_csv(tmp, index=False, errors=CSV_ERRORS)
    found = matches[matches["rank"] == 1].same_person.sum()
    log.info(
        "%d queries x %d gallery images (%s distance, threshold %.4f): %d have a match below it", len(query), len(gallery), variant, threshold, found
    )
    return matches, len(gallery)
