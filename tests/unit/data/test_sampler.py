"""The P x K identity sampler (data/sampler.py)."""

import numpy as np
import pytest

from alignedreid.data.sampler import IdentitySampler


def test_pk_sampler_structure_and_determinism():
    pids = np.repeat([5, 9, 11, 20, 33, 41], [3, 8, 2, 6, 5, 4])
    s = IdentitySampler(pids, num_instances=4, seed=7)
    seq = s.indices(0)
    assert len(seq) == len(s) == 6 * 4
    chunks = seq.reshape(-1, 4)
    for c in chunks:  # each chunk of K is one identity
        assert len(set(pids[c])) == 1
    assert sorted(set(pids[chunks[:, 0]])) == [5, 9, 11, 20, 33, 41]
    assert len(set(chunks[pids[chunks[:, 0]] == 9][0])) == 4  # enough images: no repeats
    np.testing.assert_array_equal(seq, IdentitySampler(pids, 4, seed=7).indices(0))
    assert not np.array_equal(seq, s.indices(1))  # reshuffled each epoch


def test_ranks_get_disjoint_identities():
    pids = np.repeat(np.arange(1, 17), 3)
    shares = [set(pids[IdentitySampler(pids, 2, seed=1, rank=r, world_size=4).indices(0)]) for r in range(4)]
    assert all(len(s) == 4 for s in shares)
    assert set().union(*shares) == set(range(1, 17))
    assert sum(len(s) for s in shares) == 16
    with pytest.raises(ValueError):
        IdentitySampler(pids, 2, 1, rank=4, world_size=4)
