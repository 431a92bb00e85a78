"""Two-stage search over a streamed gallery: the exhaustive global + local ranking where the shortlist
holds the neighbours, and always with exact=True."""

import numpy as np
import pytest

from alignedreid.evaluation.distance import global_distance, unit_stripes_
from alignedreid.evaluation.local import local_distance
from alignedreid.features.store import FeatureStore
from alignedreid.search.streaming import InMemoryGallery, two_stage_top_k


def _exhaustive(qg, ql, gg, gl, k):
    d = global_distance(qg, gg) + local_distance(unit_stripes_(ql.copy()), unit_stripes_(gl.copy()))
    order = np.lexsort((np.broadcast_to(np.arange(d.shape[1]), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, 1)


def _identities(n_ids, per_id, seed, g=16, s=3, dim=8, noise=0.5, latent=4):
    """Features clustered by identity, global and stripes projected from one latent per identity (as a
    trained model's are: images far apart globally are far apart stripe by stripe too)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_ids, latent), np.float32)
    cg = z @ rng.standard_normal((latent, g), np.float32)
    cl = (z @ rng.standard_normal((latent, s * dim), np.float32)).reshape(n_ids, s, dim)
    ids = np.repeat(np.arange(n_ids), per_id)
    rng = np.random.default_rng(seed + 100 * per_id)  # the images' own noise
    return cg[ids] + noise * rng.standard_normal((len(ids), g), np.float32), cl[ids] + noise * rng.standard_normal((len(ids), s, dim), np.float32)


@pytest.mark.parametrize("dtype", ["float32", "float16"])  # float16: the stripes scaled inside the kernel
def test_clustered_gallery_from_a_store_ranks_exactly_as_exhaustive(tmp_path, dtype):
    gg, gl = _identities(60, 5, 1)
    gg, gl = gg.astype(dtype).astype(np.float32), gl.astype(dtype).astype(np.float32)  # what the store holds
    qg, ql = _identities(60, 1, 1)  # a query per identity (same centres, own noise)
    qg, ql = qg[:20], ql[:20]
    store = FeatureStore.create(tmp_path / "s", 16, 3, 8, dtype)
    for s in range(0, 300, 70):  # appended in parts of uneven size
        store.append([str(i) for i in range(s, min(300, s + 70))], gg[s : s + 70], gl[s : s + 70])
    rows, dist, stats = two_stage_top_k(qg, ql, store, top_k=10, shortlist=60, block_rows=64)
    want_rows, want_dist = _exhaustive(qg, ql, gg, gl, 10)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(dist, want_dist, atol=1e-4)
    assert stats["shortlist"] == 60 and stats["gallery"] == 300 and stats["extended"] == 0


def test_unclustered_gallery_extends_the_unsure_queries_and_stays_exact():
    """Random global and stripes are unrelated: a short global shortlist misses true neighbours, the bound
    finds those queries and scores every item that could still beat their k-th."""
    rng = np.random.default_rng(2)
    gg, gl = rng.standard_normal((400, 16), np.float32), rng.standard_normal((400, 3, 8), np.float32)
    qg, ql = rng.standard_normal((15, 16), np.float32), rng.standard_normal((15, 3, 8), np.float32)
    gallery = InMemoryGallery(gg, gl)
    want_rows, want_dist = _exhaustive(qg, ql, gg, gl, 5)
    short_rows, _, short = two_stage_top_k(qg, ql, gallery, top_k=5, shortlist=8, block_rows=100)
    assert short["certain"] < 15 and (short_rows != want_rows).any()  # the shortlist alone misses some
    rows, dist, stats = two_stage_top_k(qg, ql, gallery, top_k=5, shortlist=8, block_rows=100, exact=True)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(dist, want_dist, atol=1e-4)
    assert stats["extended"] == 15 - short["certain"] and stats["extra_candidates"] > 0


@pytest.mark.parametrize("top_k,shortlist", [(3, 500), (50, 2)])
def test_shortlist_and_top_k_beyond_the_gallery(top_k, shortlist):
    gg, gl = _identities(8, 3, 3)
    rows, dist, _ = two_stage_top_k(gg[:4], gl[:4], InMemoryGallery(gg, gl), top_k=top_k, shortlist=shortlist, block_rows=5)
    want_rows, _ = _exhaustive(gg[:4], gl[:4], gg, gl, min(top_k, 24))
    np.testing.assert_array_equal(rows, want_rows)
