"""The DMLI local distance (evaluation/local.py) against the straightforward reference."""

import numpy as np
import pytest

from alignedreid.evaluation import local_distance
from alignedreid.evaluation.reference import ref_local_distance


@pytest.mark.parametrize("M,N,m,n,d", [(5, 7, 8, 8, 16), (3, 4, 4, 6, 5), (1, 1, 1, 1, 3), (6, 9, 7, 3, 32)])
def test_local_distance_matches_reference(M, N, m, n, d):
    rng = np.random.default_rng(M * 100 + N)
    x = rng.normal(size=(M, m, d)).astype(np.float32)
    y = rng.normal(size=(N, n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    y /= np.linalg.norm(y, axis=2, keepdims=True)
    got = local_distance(x, y)
    assert got.dtype == np.float32 and got.shape == (M, N)
    np.testing.assert_allclose(got, ref_local_distance(x, y), rtol=1e-5, atol=1e-5)


def test_local_distance_blocks_and_symmetry():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(23, 8, 12)).astype(np.float32)
    full = local_distance(x, x.copy(), block_elems=1 << 30)
    tiny_blocks_sym = local_distance(x, x, block_elems=200)  # many blocks, mirrored
    tiny_blocks = local_distance(x, x.copy(), block_elems=200, symmetric=False)
    # Off the diagonal every blocking gives the same numbers. On it (a stripe against itself) the
    # squared distance is |x|^2 + |x|^2 - 2 x.x, a cancellation whose float32 rounding depends on
    # how BLAS splits the product: sqrt(eps32 * 2|x|^2) ~ 2e-3 here, so the diagonal gets that tolerance.
    off = ~np.eye(len(x), dtype=bool)
    for got in (tiny_blocks_sym, tiny_blocks, full.T):
        np.testing.assert_allclose(got[off], full[off], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.diag(got), np.diag(full), atol=5e-3)


@pytest.mark.parametrize("scale_row", [None, 3])
def test_local_distance_of_normalised_stripes_matches_reference(scale_row):
    """L2-normalised stripes (the feature-file contract) take the polynomial squashing path; a row
    scaled away from unit length takes the exact one. Both must equal the reference."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((9, 8, 32)).astype(np.float32)
    y = rng.standard_normal((14, 8, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    y /= np.linalg.norm(y, axis=2, keepdims=True)
    y[:3] = 0.6 * y[:3] + 0.4 * x[:3]  # some close pairs (small distances)
    y[:3] /= np.linalg.norm(y[:3], axis=2, keepdims=True)
    if scale_row is not None:
        x[scale_row] *= 4.0
    np.testing.assert_allclose(local_distance(x, y), ref_local_distance(x, y), rtol=1e-5, atol=2e-6)
    off = ~np.eye(len(x), dtype=bool)  # the diagonal's float32 cancellation: see the test above
    np.testing.assert_allclose(local_distance(x, x)[off], ref_local_distance(x, x)[off], rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(np.diag(local_distance(x, x)), np.diag(ref_local_distance(x, x)), atol=5e-3)
