"""Two-stage ranking (evaluation.shortlist, search.shortlist): exact on the shortlist, global order past it;
re-ranking of global + local on shortlists."""

import numpy as np
import pytest

from alignedreid.evaluation.distance import global_distance
from alignedreid.evaluation.local import local_distance
from alignedreid.evaluation.rerank import re_ranking
from alignedreid.evaluation.rerank_shortlist import re_ranking_shortlist
from alignedreid.evaluation.run import plan_variants
from alignedreid.evaluation.shortlist import global_local_shortlist, local_on_pairs, local_on_shortlist, two_stage_global_local
from alignedreid.foundation.errors import PipelineError
from tests.conftest import eval_section


def _features(seed=7, nq=12, ng=60, m=4, d=8):
    rng = np.random.default_rng(seed)
    qg, gg = rng.standard_normal((nq, 16), dtype=np.float32), rng.standard_normal((ng, 16), dtype=np.float32)
    ql, gl = rng.standard_normal((nq, m, d), dtype=np.float32), rng.standard_normal((ng, m + 1, d), dtype=np.float32)
    ql /= np.linalg.norm(ql, axis=2, keepdims=True)
    gl /= np.linalg.norm(gl, axis=2, keepdims=True)
    return global_distance(qg, gg), ql, gl


def test_pair_kernel_equals_the_matrix_kernel():
    glob, ql, gl = _features()
    idx = np.random.default_rng(1).integers(0, gl.shape[0], (ql.shape[0], 9))
    np.testing.assert_allclose(local_on_shortlist(ql, gl, idx), np.take_along_axis(local_distance(ql, gl), idx, 1), atol=2e-6)


def test_shortlist_equals_exhaustive_at_full_size_and_keeps_global_order_past_it():
    glob, ql, gl = _features()
    full = glob + local_distance(ql, gl)
    np.testing.assert_allclose(two_stage_global_local(glob, ql, gl, 60), full, rtol=1e-6)
    two = two_stage_global_local(glob, ql, gl, 10)
    for i in range(len(glob)):
        short = list(np.argsort(glob[i], kind="stable")[:10])
        order = np.argsort(two[i], kind="stable")
        assert set(order[:10]) == set(short)  # the shortlist first, ordered by global + local
        np.testing.assert_allclose(two[i, order[:10]], full[i, order[:10]], atol=2e-6)
        assert list(order[10:]) == [j for j in np.argsort(glob[i], kind="stable") if j not in set(short)]  # then global order


def test_shortlist_must_hold_the_neighbours_re_ranking_reads():
    with pytest.raises(PipelineError, match=r"evaluation.shortlist 5 is shorter than the k1 \+ 1 = 21"):
        plan_variants(10, 20, ["global", "global_local_rerank"], True, 8.0, 5, 20)
    assert plan_variants(10, 20, ["global", "global_local_rerank"], True, 8.0, 21, 20)[0] == ["global", "global_local_rerank"]


def _nodes_features(seed=3, nq=15, ng=70, m=4, d=8):
    rng = np.random.default_rng(seed)
    qg, gg = rng.standard_normal((nq, 16), dtype=np.float32), rng.standard_normal((ng, 16), dtype=np.float32)
    ql, gl = rng.standard_normal((nq, m, d), dtype=np.float32), rng.standard_normal((ng, m, d), dtype=np.float32)
    ql /= np.linalg.norm(ql, axis=2, keepdims=True)
    gl /= np.linalg.norm(gl, axis=2, keepdims=True)
    return qg, gg, ql, gl


def test_node_pair_kernel_equals_the_matrix_kernel_over_queries_and_gallery():
    qg, gg, ql, gl = _nodes_features()
    nq, n = len(ql), len(ql) + len(gl)
    every = np.block([[local_distance(ql, ql), local_distance(ql, gl)], [local_distance(gl, ql), local_distance(gl, gl)]])
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, n, 400), rng.integers(0, n, 400)
    keep = rows != cols  # a node with itself: the matrix kernel's Gram form leaves rounding residue, the pair kernel gives the exact path
    got = local_on_pairs(ql, gl, rows[keep], cols[keep])
    np.testing.assert_allclose(got, every[rows[keep], cols[keep]], atol=2e-5)
    assert (rows[keep] < nq).any() and (rows[keep] >= nq).any()


def _exhaustive_rerank(qg, gg, ql, gl, k1, k2, lam):
    qg_d = global_distance(qg, gg) + local_distance(ql, gl)
    qq = global_distance(qg, qg) + local_distance(ql, ql)
    gg_d = global_distance(gg, gg) + local_distance(gl, gl)
    return re_ranking(np.sqrt(qg_d), np.sqrt(qq), np.sqrt(gg_d), k1, k2, lam)


def _assembled(blocks, nq, ng):
    out = np.full((nq, ng), np.nan, dtype=np.float32)
    for start, rows in blocks:
        out[start : start + len(rows)] = rows
    assert not np.isnan(out).any()
    return out


@pytest.mark.parametrize("node_chunk", [8192, 7])  # the candidates' distances at once, and in chunks of nodes
def test_re_ranking_on_shortlists_equals_exhaustive_when_the_shortlists_hold_everything(node_chunk, monkeypatch):
    from alignedreid.evaluation import rerank_shortlist

    monkeypatch.setattr(rerank_shortlist, "NODE_CHUNK", node_chunk)
    qg, gg, ql, gl = _nodes_features()
    ref = _exhaustive_rerank(qg, gg, ql, gl, 6, 3, 0.3)
    idx, values = global_local_shortlist(global_distance(qg, gg), ql, gl, len(gg))
    got = _assembled(re_ranking_shortlist(qg, gg, ql, gl, idx, values, len(qg) + len(gg), 6, 3, 0.3), len(qg), len(gg))
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_re_ranking_on_short_shortlists_keeps_the_contract():
    """Shortlists shorter than the gallery: the shortlist and the images whose neighbourhoods overlap
    the query's carry re-ranked distances close to exhaustive; the rest follow in global order."""
    qg, gg, ql, gl = _nodes_features()
    glob = global_distance(qg, gg)
    ref = _exhaustive_rerank(qg, gg, ql, gl, 6, 3, 0.3)
    idx, values = global_local_shortlist(glob, ql, gl, 20)
    rows = _assembled(re_ranking_shortlist(qg, gg, ql, gl, idx, values, 40, 6, 3, 0.3), len(qg), len(gg))
    beyond = 0
    for i in range(len(glob)):
        tail = rows[i] >= rows[i, idx[i]].max() + 1.0  # past every re-ranked item (offset of at least 1)
        assert not tail[idx[i]].any()
        reranked = np.flatnonzero(~tail)
        beyond += len(reranked) - len(idx[i])
        assert np.abs(rows[i, reranked] - ref[i, reranked]).max() < 0.05  # 85 images, candidates of 40: measured 2.4e-6
        order = [j for j in np.argsort(rows[i], kind="stable") if tail[j]]
        assert order == [j for j in np.argsort(glob[i], kind="stable") if tail[j]]  # global order behind them
    assert beyond > 0  # overlapping neighbourhoods lift images from past the shortlist
    with pytest.raises(ValueError, match="shorter than the 7 neighbours"):
        list(re_ranking_shortlist(qg, gg, ql, gl, idx, values, 6, 6, 3, 0.3))


def test_evaluate_with_shortlists_runs_every_variant_and_is_exact_at_full_length():
    from alignedreid.evaluation.run import evaluate_features
    from alignedreid.features.files import FeatureSet

    qg, gg, ql, gl = _nodes_features(seed=5)

    def fs(glob, loc, pids):
        n = len(pids)
        return FeatureSet(glob, loc.copy(), pids, (np.arange(n) // 5) % 3, np.array([f"{i}.jpg" for i in range(n)]), np.arange(n))

    q, g = fs(qg, ql, np.arange(15) % 7 + 1), fs(gg, gl, np.arange(70) % 7 + 1)
    exact, per_query, _ = evaluate_features(q, g, eval_section(6, 3), verification=False)
    full, per_full, times = evaluate_features(q, g, eval_section(6, 3, matrix_budget_gb=1e-9, shortlist=85), verification=False)
    assert "compute + rank global_local_rerank" in times
    for v in ("global", "global_local", "global_rerank", "global_local_rerank"):
        assert full[v]["mAP"] == pytest.approx(exact[v]["mAP"], abs=1e-6), v
        assert full[v]["cmc"] == pytest.approx(exact[v]["cmc"], abs=1e-9), v
    assert (per_full["top10_gallery"] == per_query["top10_gallery"]).mean() > 0.95  # ties of float rounding aside
    short, _, _ = evaluate_features(q, g, eval_section(6, 3, matrix_budget_gb=1e-9, shortlist=20), verification=False)
    assert set(short) >= {"global", "global_local", "global_rerank", "global_local_rerank"}


def test_blocks_rank_as_the_whole_matrix():
    from alignedreid.evaluation.ranking import rank_details, rank_details_blocks

    rng = np.random.default_rng(2)
    dist = rng.random((23, 50)).astype(np.float32)
    qp, gp = rng.integers(1, 6, 23), rng.integers(0, 6, 50) - (rng.random(50) < 0.1)
    qc, gc = rng.integers(0, 3, 23), rng.integers(0, 3, 50)
    whole = rank_details(dist, qp, gp, qc, gc, 10)
    blocks = rank_details_blocks([(s, dist[s : s + 5]) for s in range(0, 23, 5)], qp, gp, qc, gc, 10)
    assert blocks.mAP == whole.mAP and blocks.mINP == whole.mINP and np.array_equal(blocks.cmc, whole.cmc)
    assert np.array_equal(blocks.query_index, whole.query_index)
    with pytest.raises(ValueError, match="left 3 of 23 queries unranked"):
        rank_details_blocks([(s, dist[s : s + 5]) for s in range(0, 18, 5)], qp, gp, qc, gc, 10)


def test_half_precision_kernels_equal_float32_kernels_on_the_same_values():
    """float16 stripes are widened inside the kernels: the result is the float32 kernels' on the rounded values."""
    _, ql, gl = _features(d=32)
    gl = gl[:, :4]  # node pairs need one stripe count on both sides
    qh, gh = ql.astype(np.float16), gl.astype(np.float16)
    qr, gr = qh.astype(np.float32), gh.astype(np.float32)
    idx = np.random.default_rng(2).integers(0, len(gl), (len(ql), 9))
    half = local_on_shortlist(qh, gh, idx)
    np.testing.assert_array_equal(half, local_on_shortlist(qr, gr, idx))
    assert not np.array_equal(half, local_on_shortlist(ql, gl, idx))  # the rounding is real
    rows, cols = np.random.default_rng(3).integers(0, len(ql) + len(gl), (2, 300))
    np.testing.assert_array_equal(local_on_pairs(qh, gh, rows, cols), local_on_pairs(qr, gr, rows, cols))
    np.testing.assert_array_equal(local_on_pairs(qh, gl, rows, cols), local_on_pairs(qr, gr, rows, cols))  # mixed: both as float16


def test_the_kernels_widen_every_finite_half_exactly():
    """The kernels' float16 -> float32 widening (bit moves and one scale) equals numpy's for every finite value, subnormals and -0 included."""
    import numba

    from alignedreid.evaluation.shortlist import _widen

    @numba.njit
    def widen_all(bits):
        scratch = np.empty(bits.shape, np.uint32)
        out = scratch.view(np.float32)
        _widen(bits, scratch, out)
        return out

    halves = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    halves = halves[np.isfinite(halves)].reshape(-1, 64)
    got = widen_all(halves.view(np.uint16))
    np.testing.assert_array_equal(got.view(np.uint32), halves.astype(np.float32).view(np.uint32))  # bit for bit


def test_scaled_half_kernel_equals_scaling_first():
    """Search's float16 path: gallery stripes of any length, widened and scaled to unit inside the kernel,
    give the float32 kernel's distance on the scaled stripes (to rounding)."""
    from alignedreid.evaluation.shortlist import local_on_shortlist_scaled

    _, ql, gl = _features(d=32)
    gl = (gl * np.random.default_rng(4).uniform(0.5, 3.0, (len(gl), gl.shape[1], 1))).astype(np.float16)  # not unit length
    idx = np.random.default_rng(5).integers(0, len(gl), (len(ql), 9))
    scaled = gl.astype(np.float32)
    scaled /= np.linalg.norm(scaled, axis=2, keepdims=True)
    np.testing.assert_allclose(local_on_shortlist_scaled(ql, gl, idx), local_on_shortlist(ql, scaled, idx), rtol=1e-5, atol=1e-6)
