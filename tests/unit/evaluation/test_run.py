"""The evaluate stage's plan (evaluation/run.py): which variants run, and how, by size."""

import numpy as np
import pytest

from tests.conftest import eval_section


def test_variant_plan_by_size():
    from alignedreid.evaluation.run import plan_variants
    from alignedreid.foundation.errors import PipelineError

    all4 = ["global", "global_local", "global_rerank", "global_local_rerank"]
    assert plan_variants(3368, 19732, all4, True, 8.0, None, 20) == (all4, False)
    assert plan_variants(3368, 19732, all4, False, 8.0, None, 20) == (["global", "global_local"], False)
    # MSMT17: the 82,161^2 gallery matrix is 25.1 GB; global re-ranking streams, global+local is refused
    assert plan_variants(11659, 82161, ["global", "global_rerank"], True, 8.0, None, 20) == (["global", "global_rerank"], True)
    with pytest.raises(
        PipelineError, match=r"global_local_rerank needs the 82161 x 82161 .*25.1 GB.*evaluation.matrix_budget_gb \(8\).*evaluation.shortlist"
    ):
        plan_variants(11659, 82161, all4, True, 8.0, None, 20)
    assert plan_variants(11659, 82161, all4, True, 8.0, 200, 20) == (all4, True)  # on shortlists every variant runs


def test_evaluate_streams_global_re_ranking_past_the_matrix_budget():
    from alignedreid.evaluation.run import evaluate_features
    from alignedreid.features.files import FeatureSet
    from alignedreid.foundation.errors import PipelineError

    rng = np.random.default_rng(4)

    def fs(n, pids):
        loc = rng.standard_normal((n, 4, 8)).astype(np.float32)
        cams = (np.arange(n) // 6) % 3
        return FeatureSet(rng.standard_normal((n, 16)).astype(np.float32), loc, pids, cams, np.array([f"{i}.jpg" for i in range(n)]), np.arange(n))

    q, g = fs(12, np.arange(12) % 6 + 1), fs(60, np.arange(60) % 6 + 1)
    variants = ["global", "global_rerank"]
    dense, _, t_dense = evaluate_features(q, g, eval_section(5, 2, variants=variants), verification=False)
    streamed, _, t_streamed = evaluate_features(q, g, eval_section(5, 2, variants=variants, matrix_budget_gb=1e-9), verification=False)
    assert "compute + rank global_rerank" in t_streamed and "re-rank global" in t_dense  # blocks ranked as they come
    assert streamed["global_rerank"]["mAP"] == pytest.approx(dense["global_rerank"]["mAP"], abs=1e-6)
    with pytest.raises(PipelineError, match="global_local_rerank needs the 60 x 60"):
        evaluate_features(q, g, eval_section(5, 2, matrix_budget_gb=1e-9), verification=False)


def _identity_features(nq=40, ng=150, ids=12, seed=5, dtype=np.float32):
    """Query and gallery FeatureSets whose global and local features cluster by identity (non-trivial metrics)."""
    from alignedreid.features.files import FeatureSet

    rng = np.random.default_rng(seed)
    centres, stripe_centres = rng.standard_normal((ids, 32)), rng.standard_normal((ids, 4, 16))

    def fs(n):
        pid = rng.integers(1, ids, n)
        pid[:3] = -1 if n == ng else pid[:3]  # junk gallery items
        glob = centres[np.maximum(pid, 0)] + 1.2 * rng.standard_normal((n, 32))
        loc = stripe_centres[np.maximum(pid, 0)] + 1.2 * rng.standard_normal((n, 4, 16))
        paths = np.array([f"{n}/{i}.jpg" for i in range(n)])
        return FeatureSet(glob.astype(np.float32), loc.astype(dtype), pid, rng.integers(0, 3, n), paths, np.arange(n))

    return fs(nq), fs(ng)


def test_streamed_global_pass_equals_the_matrix_evaluation(monkeypatch):
    """Past the matrix budget with shortlists the global distance is never held: one pass in blocks
    ranks it and collects the shortlists and the verification metrics, with the matrix path's results."""
    from alignedreid.evaluation import streamed
    from alignedreid.evaluation.run import evaluate_features

    monkeypatch.setattr(streamed, "BLOCK_ROWS", 7)  # several blocks, the last one short
    q, g = _identity_features()
    dense, per_dense, t_dense = evaluate_features(q, g, eval_section(5, 2, shortlist=30))
    q, g = _identity_features()
    blocks, per_blocks, t_blocks = evaluate_features(q, g, eval_section(5, 2, shortlist=30, matrix_budget_gb=1e-9))
    assert "global q-g" in t_dense and "global q-g" not in t_blocks and "global pass (rank, lists)" in t_blocks
    assert 0.2 < dense["global"]["mAP"] < 0.95 and dense["global_local"]["mAP"] != dense["global"]["mAP"]
    for v in ("global", "global_local", "global_local_rerank"):
        assert blocks[v]["mAP"] == pytest.approx(dense[v]["mAP"], abs=1e-9), v
        assert blocks[v]["cmc"] == pytest.approx(dense[v]["cmc"], abs=1e-9), v
    assert blocks["global_rerank"]["mAP"] == pytest.approx(dense["global_rerank"]["mAP"], abs=1e-6)  # re-ranked on the fly
    ver_d, ver_b = dense["verification"], blocks["verification"]
    assert ver_b["variant"] == ver_d["variant"] == "global"
    assert ver_b["num_negative_pairs"] == ver_d["num_negative_pairs"] and ver_b["num_positive_pairs"] == ver_d["num_positive_pairs"]
    assert ver_b["threshold"] == pytest.approx(ver_d["threshold"], abs=1e-6) and ver_b["tpr"] == ver_d["tpr"]
    assert ver_b["camera_pairs"]["cameras"] == ver_d["camera_pairs"]["cameras"]
    for a, b in zip(ver_b["camera_pairs"]["mAP"] + ver_b["camera_pairs"]["rank1"], ver_d["camera_pairs"]["mAP"] + ver_d["camera_pairs"]["rank1"]):
        assert [x is None for x in a] == [x is None for x in b] and [x for x in a if x is not None] == pytest.approx([x for x in b if x is not None])
    assert ver_b["histograms"]["positive"] == ver_d["histograms"]["positive"]
    assert sum(ver_b["histograms"]["negative"]) == sum(ver_d["histograms"]["negative"]) > 0
    rows = ["variant", "query_index", "first_match_rank", "top10_gallery"]
    glob_d, glob_b = per_dense[per_dense.variant == "global"], per_blocks[per_blocks.variant == "global"]
    assert glob_b[rows].reset_index(drop=True).equals(glob_d[rows].reset_index(drop=True))
    gl = per_dense.variant == "global_local"
    assert per_blocks[gl][rows].reset_index(drop=True).equals(per_dense[gl][rows].reset_index(drop=True))


def test_half_precision_stripes_evaluate_like_float32(tmp_path, monkeypatch):
    """evaluation.stripe_dtype float16: stripes read in chunks and held as float16; the global metrics
    are unchanged and the local ones move by at most 0.001 mAP."""
    from alignedreid.evaluation import stripes
    from alignedreid.evaluation.run import evaluate_files
    from alignedreid.features.files import save_features

    monkeypatch.setattr(stripes, "CHUNK_ROWS", 16)
    q, g = _identity_features(dtype=np.float32)
    for name, f in (("q", q), ("g", g)):
        save_features(tmp_path / f"{name}.npz", f.global_, f.local, f.pid, f.camid, f.path)
    cfg = eval_section(5, 2, shortlist=30, matrix_budget_gb=1e-9)
    full, _, _, _, _ = evaluate_files(tmp_path / "q.npz", tmp_path / "g.npz", {**cfg, "stripe_dtype": "float32"})
    half, _, times, nq, ng = evaluate_files(tmp_path / "q.npz", tmp_path / "g.npz", {**cfg, "stripe_dtype": "float16"})
    assert (nq, ng) == (40, 150) and "load features" in times
    assert half["global"] == full["global"] and half["verification"]["threshold"] == full["verification"]["threshold"]
    for v in ("global_local", "global_local_rerank"):
        assert half[v]["mAP"] == pytest.approx(full[v]["mAP"], abs=1e-3), v
