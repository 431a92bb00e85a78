"""Two-stage ranking (evaluation.shortlist, search.shortlist): exact on the shortlist, global order past it."""

import numpy as np
import pytest

from alignedreid.errors import PipelineError
from alignedreid.evaluation.distance import global_distance
from alignedreid.evaluation.local import local_distance
from alignedreid.evaluation.run import plan_variants
from alignedreid.evaluation.shortlist import local_on_shortlist, two_stage_global_local


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


def test_shortlist_refuses_the_variant_it_cannot_compute():
    with pytest.raises(PipelineError, match="global_local_rerank still needs every local distance"):
        plan_variants(10, 20, ["global", "global_local_rerank"], True, 8.0, shortlist=5)
    assert plan_variants(10, 20, ["global", "global_local", "global_rerank"], True, 8.0, shortlist=5)[0] == [
        "global",
        "global_local",
        "global_rerank",
    ]
