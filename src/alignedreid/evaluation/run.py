"""The ``evaluate`` stage: feature files -> four distance variants -> metrics.json + per-query CSV.

Distances follow the model-zoo evaluation: ``global`` is the squared Euclidean distance of
L2-normalised global features; ``global_local`` adds the DMLI distance of the local features
(each stripe at unit length: the model's own are, test-time flip's means are rescaled) 1:1; the re-ranked variants run k-reciprocal
re-ranking on the square root of those distances over all (q+g)^2 pairs.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from ..features.files import FeatureSet, load_features
from ..foundation.contracts import VARIANTS
from ..foundation.errors import PipelineError
from ..foundation.io_utils import atomic_path, write_json
from ..foundation.kernel_threads import limit_kernel_threads
from ..foundation.runlog import peak_rss_gib
from .distance import global_distance, unit_stripes_
from .local import local_distance
from .ranking import rank_details_blocks
from .rerank import re_ranking, re_ranking_features_blocks
from .rerank_shortlist import re_ranking_shortlist
from .shortlist import global_local_shortlist, local_on_shortlist, shortlist_blocks
from .stored import is_store, open_evaluation_store
from .streamed import global_pass
from .stripes import load_half_stripes
from .topk import smallest_k
from .verification import Verification

log = logging.getLogger(__name__)


class _Timer:
    def __init__(self):
        self.times: dict[str, float] = {}

    def __call__(self, name, fn, *args, **kw):
        t = time.perf_counter()
        out = fn(*args, **kw)
        self.times[name] = time.perf_counter() - t
        log.info("%-24s %8.2f s (peak RSS so far %.2f GiB)", name, self.times[name], peak_rss_gib())
        return out


def plan_variants(nq: int, ng: int, variants, rerank: bool, matrix_budget_gb: float, shortlist: int | None, k1: int) -> tuple[list[str], bool]:
    """(variants to compute, whether global re-ranking runs from features on the fly). The square
    (q+g) distance matrices are used while the gallery-gallery one fits ``matrix_budget_gb``;
    beyond it the global re-ranking computes distance blocks on the fly, and the global+local
    re-ranking (which needs the local gallery-gallery matrix) runs only on shortlists: without
    ``shortlist`` it is refused before any work."""
    wanted = [v for v in VARIANTS if v in variants and (rerank or not v.endswith("_rerank"))]
    if not wanted:
        raise PipelineError("evaluation: no variant left to compute (evaluation.variants, evaluation.rerank.enabled)")
    if shortlist and "global_local_rerank" in wanted and shortlist < k1 + 1:
        raise PipelineError(
            f"evaluation.shortlist {shortlist} is shorter than the k1 + 1 = {k1 + 1} neighbours global_local_rerank reads "
            "(evaluation.rerank.k1): raise the shortlist (200 is the measured default)"
        )
    square_gb = ng * ng * 4 / 2**30
    big = square_gb > matrix_budget_gb
    if big and "global_local_rerank" in wanted and not shortlist:
        raise PipelineError(
            f"evaluation: variant global_local_rerank needs the {ng} x {ng} local gallery-gallery distances "
            f"({square_gb:.1f} GB float32), above evaluation.matrix_budget_gb ({matrix_budget_gb:g}); set evaluation.shortlist "
            "(e.g. 200: re-ranking on each image's 200 nearest by the global distance), leave it out of evaluation.variants "
            "(global_rerank is computed on the fly at any size) or raise the budget"
        )
    return wanted, big


def _distances(t, query: FeatureSet, gallery: FeatureSet, wanted, on_the_fly: bool, k1, k2, lam, shortlist=None, streamed=None) -> dict:
    """Every distance computed, by name: a q x g matrix, or a function returning (start, rows)
    blocks of query rows (computed while they are ranked, so that no second q x g matrix is held).
    After a streamed global pass (``streamed``, a GlobalPass) the global distance is not held at all:
    the shortlists come from the pass."""
    dists = {}
    if streamed is None:
        qg = t("global q-g", global_distance, query.global_, gallery.global_)
        dists["global"] = qg
    if shortlist and needs_local(wanted):
        if streamed is None:
            idx, values = t(f"global+local, shortlist of {shortlist}", global_local_shortlist, qg, query.local, gallery.local, shortlist)
        else:
            idx, values = streamed.shortlist
            values = values + t(f"local, shortlist of {shortlist}", local_on_shortlist, query.local, gallery.local, idx)
        if "global_local" in wanted:
            dists["global_local"] = lambda: shortlist_blocks(query.global_, gallery.global_, idx, values)
        if "global_local_rerank" in wanted:
            dists["global_local_rerank"] = lambda: re_ranking_shortlist(
                query.global_, gallery.global_, query.local, gallery.local, idx, values, shortlist, k1, k2, lam
            )
    elif "global_local" in wanted or "global_local_rerank" in wanted:
        dists["global_local"] = qg + t("local q-g", local_distance, query.local, gallery.local)
    if on_the_fly and "global_rerank" in wanted:
        dists["global_rerank"] = lambda: re_ranking_features_blocks(query.global_, gallery.global_, k1, k2, lam)
    elif "global_rerank" in wanted or ("global_local_rerank" in wanted and not shortlist):
        qq = t("global q-q", global_distance, query.global_, query.global_)
        gg = t("global g-g", global_distance, gallery.global_, gallery.global_)
        if "global_rerank" in wanted:
            dists["global_rerank"] = t("re-rank global", re_ranking, np.sqrt(qg), np.sqrt(qq), np.sqrt(gg), k1, k2, lam)
        if "global_local_rerank" in wanted and not shortlist:
            qq += t("local q-q", local_distance, query.local, query.local)
            gg += t("local g-g", local_distance, gallery.local, gallery.local)
            np.sqrt(gg, out=gg)
            dists["global_local_rerank"] = t("re-rank global+local", re_ranking, np.sqrt(dists["global_local"]), np.sqrt(qq), gg, k1, k2, lam)
        del gg, qq
    return dists  # every distance computed (the verification may use one not asked for)


def verification_variant(dists: dict, wanted: str, shortlist=None) -> str:
    """The distance the verification metrics (and search's threshold) use: ``wanted`` (global or
    global_local), or 'auto' = global_local when it was computed for every pair, else global."""
    if shortlist and wanted == "global_local":
        raise PipelineError("evaluation.verification.variant global_local needs every pair's distance: set evaluation.shortlist to null")
    if wanted == "auto":
        return "global_local" if isinstance(dists.get("global_local"), np.ndarray) else "global"
    if wanted not in dists:
        raise PipelineError(f"evaluation.verification.variant {wanted}: that distance is not computed by evaluation.variants")
    return wanted


def verification_context(t, dists: dict, query: FeatureSet, gallery: FeatureSet, cfg: dict, shortlist=None) -> dict:
    """metrics.json's ``verification``: TPR at FPR 1e-2/1e-3/1e-4, the threshold at ``cfg['fpr']``,
    distance histograms and the camera-pair matrix, for one non-re-ranked distance."""
    v = verification_variant(dists, cfg["variant"], shortlist)
    require_finite_distances(v, 0, dists[v], query)
    acc = Verification(query.pid, gallery.pid, query.camid, gallery.camid, cfg["fpr"])
    t(f"verification {v}", acc.feed, 0, dists[v])
    return _logged(acc.result(v))


def _logged(verification: dict) -> dict:
    v = verification
    log.info("verification (%s): threshold %.4f at FPR %g, TPR %.3f", v["variant"], v["threshold"], v["target_fpr"], v["tpr"])
    return verification


def _blocks(dist):
    """(start, rows) blocks of a distance: a matrix is one block, a function yields its own."""
    return [(0, dist)] if isinstance(dist, np.ndarray) else dist()


def require_finite_distances(name: str, start: int, rows: np.ndarray, query: FeatureSet) -> None:
    """evaluate refuses a NaN or inf distance (it would rank as nothing or everything), naming the variant and the queries."""
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = start + np.flatnonzero(~finite)
        raise PipelineError(
            f"evaluate: the {name} distance is NaN or inf for {len(bad)} queries (e.g. {', '.join(str(query.path[i]) for i in bad[:3])}); "
            "nothing is written"
        )


def rank_variant(dist, query: FeatureSet, gallery: FeatureSet, max_rank: int, top: int = 10, name: str = "distance"):
    """(RankDetails, each query's ``top`` nearest gallery indices) of a matrix or a block function; a
    non-finite distance stops it (:func:`require_finite_distances`)."""
    tops = np.empty((len(query), min(top, len(gallery))), dtype=np.int64)

    def keep_top(start, rows):
        require_finite_distances(name, start, rows, query)
        tops[start : start + len(rows)] = smallest_k(rows, top)

    det = rank_details_blocks(_blocks(dist), query.pid, gallery.pid, query.camid, gallery.camid, max_rank, keep_top)
    return det, tops


def evaluate_features(query: FeatureSet, gallery: FeatureSet, cfg: dict, verification: bool = True):
    """Return (metrics dict, per-query DataFrame, timings) for the variants of ``cfg``, the validated
    ``evaluation`` config section (every key present: variants, max_rank, matrix_budget_gb,
    shortlist, rerank, verification); with ``verification`` the metrics hold a ``verification``
    entry too. Each variant is ranked as soon as it is computed and then dropped; the distances
    given as block functions (shortlists, re-ranking on the fly) are computed while they are ranked.
    Where the gallery-gallery matrix is over budget (the global re-ranking runs on the fly) and
    the local variants run on shortlists, the global distance is streamed too (streamed.py): one
    pass ranks it and collects the shortlists and the verification metrics, and no q x g matrix
    of it is held (MSMT17: 3.8 GB)."""
    rr, shortlist, max_rank = cfg["rerank"], cfg["shortlist"], cfg["max_rank"]
    k1, k2, lam = rr["k1"], rr["k2"], rr["lambda"]
    t = _Timer()
    wanted, on_the_fly = plan_variants(len(query), len(gallery), cfg["variants"], rr["enabled"], cfg["matrix_budget_gb"], shortlist, k1)
    for f in (query, gallery):
        if f.local.dtype == np.float32 and not f.unit_local:  # float16 stripes and a store's are at unit length already (stored.py)
            unit_stripes_(f.local)
    streamed = None
    if on_the_fly and (shortlist or not needs_local(wanted)):
        ver_cfg = cfg["verification"] if verification else None
        if ver_cfg:
            verification_variant({"global": None}, ver_cfg["variant"], shortlist)  # only the global distance is seen whole
        local_shortlist = shortlist if needs_local(wanted) else None
        streamed = t("global pass (rank, lists)", global_pass, query, gallery, max_rank, local_shortlist, ver_cfg, require_finite_distances)
    dists = _distances(t, query, gallery, wanted, on_the_fly, k1, k2, lam, shortlist, streamed)
    if not verification:
        extra = {}
    elif streamed:
        extra = {"verification": _logged(streamed.verification)}
    else:
        extra = {"verification": verification_context(t, dists, query, gallery, cfg["verification"], shortlist)}
    dists = {v: dists[v] for v in wanted if v in dists}
    metrics, rows = {}, []
    for name in wanted:
        if name not in dists:  # the global variant, ranked by the streamed pass
            det, top = streamed.ranked, streamed.top
        else:
            label = f"rank {name}" if isinstance(dists[name], np.ndarray) else f"compute + rank {name}"
            det, top = t(label, rank_variant, dists.pop(name), query, gallery, max_rank, 10, name)
        metrics[name] = {"mAP": det.mAP, "mINP": det.mINP, "cmc": det.cmc.tolist(), "num_valid_queries": int(len(det.query_index))}
        for qi, first, ap, tops in zip(det.query_index, det.first_match, det.ap, top[det.query_index]):
            rows.append(
                (name, int(qi), query.path[qi], int(query.pid[qi]), int(query.camid[qi]), int(first) + 1, float(ap), " ".join(map(str, tops)))
            )
    per_query = pd.DataFrame(rows, columns=["variant", "query_index", "query_path", "pid", "camid", "first_match_rank", "ap", "top10_gallery"])
    metrics.update(extra)
    return metrics, per_query, t.times


def needs_local(variants) -> bool:
    """Whether any requested variant uses the local (DMLI) features."""
    return any(v.startswith("global_local") for v in variants)


def _load_split_pair(query_npz, gallery_npz, local: bool, stripe_dtype: str) -> tuple[FeatureSet, FeatureSet]:
    """Both feature files, or both evaluation stores (stored.py: mapped, stripes as stored); from
    files with ``stripe_dtype`` float16 the stripes are read as float16 (stripes.py)."""
    if is_store(query_npz) or is_store(gallery_npz):
        pair = open_evaluation_store(query_npz), open_evaluation_store(gallery_npz)
        for name, f in zip((query_npz, gallery_npz), pair):
            if local and not f.local.size and len(f):
                raise PipelineError(f"{name}: the store holds no stripes (written for the global variants only); the local variants need them")
        return pair
    half = local and stripe_dtype == "float16"
    query, gallery = load_features(query_npz, local and not half), load_features(gallery_npz, local and not half)
    if half:
        query, gallery = load_half_stripes(query_npz, query), load_half_stripes(gallery_npz, gallery)
    for name, f in ((query_npz, query), (gallery_npz, gallery)):
        if not f.complete:
            raise PipelineError(f"{name}: holds a sample of {len(f)} rows, evaluation needs every image of the split")
    return query, gallery


def evaluate_files(query_npz, gallery_npz, eval_cfg: dict, verification: bool = True):
    """(metrics, per-query DataFrame, timings, #query, #gallery) of two feature files or two
    evaluation stores (what the evaluate stage reads): ``eval_cfg`` the validated ``evaluation``
    section (stripe_dtype included)."""
    t = time.perf_counter()
    query, gallery = _load_split_pair(query_npz, gallery_npz, needs_local(eval_cfg["variants"]), eval_cfg["stripe_dtype"])
    load_s = time.perf_counter() - t
    log.info(
        "query %d x gallery %d; global %s, local %s %s; loaded in %.1f s (peak RSS so far %.2f GiB)",
        len(query),
        len(gallery),
        query.global_.shape[1:],
        query.local.shape[1:],
        query.local.dtype,
        load_s,
        peak_rss_gib(),
    )
    metrics, per_query, times = evaluate_features(query, gallery, eval_cfg, verification)
    return metrics, per_query, {"load features": load_s, **times}, len(query), len(gallery)


def precision_drop(metrics: dict, reference: dict) -> dict:
    """Per variant, how many points mAP and rank-1 lost against the fp32 reference (negative: gained)."""
    return {
        v: {
            "mAP_points": 100 * (reference[v]["mAP"] - m["mAP"]),
            "rank1_points": 100 * (reference[v]["cmc"][0] - m["cmc"][0]),
        }
        for v, m in metrics.items()
        if v in VARIANTS and v in reference
    }


def check_drop(drop: dict, metrics: dict, reference: dict, precision: str, max_map_drop: float | None) -> None:
    """Fail, naming both numbers, when a variant's mAP fell more than ``max_map_drop`` points below fp32."""
    if max_map_drop is None or not drop:
        return
    worst = max(drop, key=lambda v: drop[v]["mAP_points"])
    if drop[worst]["mAP_points"] > max_map_drop:
        every = ", ".join(f"{v} {-d['mAP_points']:+.2f}" for v, d in drop.items())
        raise PipelineError(
            f"infer.precision {precision}: {worst} mAP {100 * metrics[worst]['mAP']:.2f}% is {drop[worst]['mAP_points']:.2f} points "
            f"below fp32's {100 * reference[worst]['mAP']:.2f}%, more than infer.max_map_drop ({max_map_drop:g} points). "
            f"Measured mAP change per variant against fp32, in points: {every}. To try: compare the features in "
            "results/features/parity.json (low_precision: cosines to the fp32 reference), infer.precision bf16 where the CPU has it, "
            "or fp32; or accept the drop with a higher infer.max_map_drop (null: report only)"
        )


def run_evaluation(
    query_npz,
    gallery_npz,
    metrics_out,
    per_query_out,
    eval_cfg: dict,
    threads: int,
    precision: str,
    reference: tuple | None = None,
    max_map_drop: float | None = None,
) -> dict:
    """The evaluate stage: ``eval_cfg`` is the validated ``evaluation`` config section, ``threads``
    the CPU threads the job was given (Snakemake's ``threads``). With ``reference`` (the fp32
    query and gallery feature files of the same model, for an int8 or bf16 run) it is evaluated too:
    metrics.json keeps the evaluated variants at the top level and adds ``fp32`` and
    ``precision_drop``; a drop above ``max_map_drop`` points fails the stage."""
    log.info("kernel threads: %d", limit_kernel_threads(threads))
    metrics, per_query, times, nq, ng = evaluate_files(query_npz, gallery_npz, eval_cfg)
    comparison = {}
    if reference:
        log.info("the fp32 features of the same model, for comparison:")
        ref_metrics, _, ref_times, _, _ = evaluate_files(reference[0], reference[1], eval_cfg, verification=False)
        times.update({f"fp32 {k}": v for k, v in ref_times.items()})
        drop = precision_drop(metrics, ref_metrics)
        for v, d in drop.items():
            log.info("%-20s %s vs fp32: mAP %+.2f points, rank-1 %+.2f points", v, precision, -d["mAP_points"], -d["rank1_points"])
        check_drop(drop, metrics, ref_metrics, precision, max_map_drop)
        comparison = {"fp32": ref_metrics, "precision_drop": drop, "max_map_drop": max_map_drop}
    for name, m in metrics.items():
        if name not in VARIANTS:
            continue
        c = m["cmc"]
        log.info(
            "%-20s mAP %.1f%%  mINP %.1f%%  R1 %.1f%%  R5 %.1f%%  R10 %.1f%%",
            name,
            100 * m["mAP"],
            100 * m["mINP"],
            100 * c[0],
            100 * c[min(4, len(c) - 1)],
            100 * c[min(9, len(c) - 1)],
        )
    out = {
        **metrics,
        **comparison,
        "precision": precision,
        "feature_source": eval_cfg["feature_source"],
        "num_query": nq,
        "num_gallery": ng,
        "rerank": {k: eval_cfg["rerank"][k] for k in ("k1", "k2", "lambda")},
        "shortlist": eval_cfg["shortlist"],
        "timings_s": times,
    }
    with atomic_path(per_query_out) as tmp:
        per_query.to_csv(tmp, index=False)
    write_json(metrics_out, out)
    return out
