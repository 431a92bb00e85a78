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
