"""Ranking of the search: the evaluation's verification distance, the top-k per query (the gallery
streamed from its feature store or file), the same-person decision."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..data.manifests import CSV_ERRORS
from ..evaluation.distance import global_distance, l2_normalise, unit_stripes_
from ..evaluation.local import local_distance
from ..evaluation.shortlist import two_stage_global_local
from ..evaluation.stored import is_store, open_labelled_store
from ..features.files import FeatureSet, load_features
from ..foundation.errors import PipelineError
from ..foundation.io_utils import atomic_path
from .cache import StoreView, is_view, load_view
from .streaming import InMemoryGallery, global_shortlist, two_stage_top_k

log = logging.getLogger(__name__)
MATCH_COLUMNS = ["query", "rank", "gallery", "distance", "same_person"]


def search_distances(query, gallery, variant: str, shortlist: int | None = None) -> np.ndarray:
    """The evaluation's distance between every query and gallery image, as a [q, g] matrix (the
    in-memory reference the streamed ranking equals; docs/architecture.md §5); with
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


def evaluation_gallery_view(root) -> StoreView:
    """Every row of an evaluation store (evaluation/stored.py: the evaluation gallery's features) with its
    labels, read like the search's own store: in blocks and gathered rows, never whole."""
    store, pid, camid, paths = open_labelled_store(root)
    return StoreView(store, np.arange(len(store), dtype=np.int64), pid, camid, paths)


def _open(path):
    """A view of the search's feature store, the evaluation gallery's store or a feature file."""
    if is_store(path):
        return evaluation_gallery_view(path)
    return load_view(path) if is_view(path) else load_features(path)


def ranked(query: FeatureSet, gallery, variant: str, top_k: int, shortlist: int | None, block_rows: int = 65536):
    """(gallery rows, distances) [q, k] of each query's ``top_k`` nearest, nearest first (ties by gallery
    order), the gallery streamed in blocks (search.streaming): ``global`` ranks by the global distance;
    ``global_local`` adds the local distance on each query's ``shortlist`` nearest (None: every item)."""
    if variant == "global":
        q_unit = l2_normalise(np.asarray(query.global_, np.float32))
        d, idx = global_shortlist(q_unit, gallery, min(top_k, len(gallery)), block_rows)
        order = np.lexsort((idx, d), axis=1)
        return np.take_along_axis(idx, order, 1), np.take_along_axis(d, order, 1)
    if variant != "global_local":
        raise PipelineError(f"search: distance {variant!r} is not global or global_local")
    rows, dist, stats = two_stage_top_k(query.global_, query.local, gallery, top_k, shortlist or len(gallery), block_rows)
    log.info("two-stage ranking: %s", stats)
    return rows, dist


def search(query_file, gallery_file, verification: dict, out_csv, top_k: int, shortlist: int | None = None) -> tuple[pd.DataFrame, int]:
    """matches.csv: for every query its ``top_k`` gallery images, nearest first, with the distance and
    the decision (distance below ``verification['threshold']``). Either file is a view of the search's
    feature store (search_features), the evaluation gallery's store or a feature file; a store is read
    in blocks, never whole."""
    query, gallery = _open(query_file), _open(gallery_file)
    if isinstance(query, StoreView):
        query = query.features()
    source = gallery if isinstance(gallery, StoreView) else InMemoryGallery(gallery.global_, gallery.local)
    variant, threshold = verification["variant"], float(verification["threshold"])
    rows, dist = ranked(query, source, variant, top_k, shortlist)
    out = []
    for i in range(len(query)):
        for r, (j, d) in enumerate(zip(rows[i], dist[i]), start=1):
            out.append((query.path[i], r, gallery.path[j], float(d), bool(d < threshold)))
    matches = pd.DataFrame(out, columns=MATCH_COLUMNS)
    with atomic_path(out_csv) as tmp:
        matches.to_csv(tmp, index=False, errors=CSV_ERRORS)
    found = matches[matches["rank"] == 1].same_person.sum()
    log.info(
        "%d queries x %d gallery images (%s distance, threshold %.4f): %d have a match below it", len(query), len(gallery), variant, threshold, found
    )
    return matches, len(gallery)
