"""The feature store: appended part by part and never rewritten, read back in blocks and by rows."""

import os
import time

import numpy as np
import pytest

from alignedreid.features.files import NonFiniteFeatures
from alignedreid.features.store import FeatureStore, StoreError


def _features(n, seed, g=6, s=3, d=4):
    rng = np.random.default_rng(seed)
    return [f"k{seed}-{i}" for i in range(n)], rng.standard_normal((n, g), np.float32), rng.standard_normal((n, s, d), np.float32)


def test_appends_add_parts_and_never_touch_earlier_ones(tmp_path):
    store = FeatureStore.create(tmp_path / "s", 6, 3, 4)
    k1, g1, l1 = _features(5, 1)
    first = store.append(k1, g1, l1)
    before = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes()) for f in first.iterdir()}
    k2, g2, l2 = _features(7, 2)
    store.append(k2, g2, l2)
    assert {f.name: (f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes()) for f in first.iterdir()} == before
    again = FeatureStore(tmp_path / "s")  # what another process sees
    assert len(again) == 12 and [k.decode() for k in again.keys()] == k1 + k2
    np.testing.assert_array_equal(np.concatenate([b for _, b in again.global_blocks(rows=4)]), np.concatenate([g1, g2]))
    rows = [11, 0, 4, 5, 5, 6]  # across both parts, repeats, out of order
    np.testing.assert_array_equal(again.gather("local", rows), np.concatenate([l1, l2])[rows])
    assert not list((tmp_path / "s").glob(".tmp-*"))


def test_a_new_part_sorts_after_every_part_there_whatever_the_clock(tmp_path):
    """A writer whose clock is behind the newest part (another host, a clock step) still appends after
    it: rows a reader already holds never move."""
    store = FeatureStore.create(tmp_path / "s", 6, 3, 4)
    k1, g1, l1 = _features(3, 1)
    first = store.append(k1, g1, l1)
    ahead = first.with_name(f"part-{time.time_ns() + 10**15}-{first.name.rsplit('-', 1)[1]}")  # written by a clock ~12 days ahead
    first.rename(ahead)
    store.refresh()
    k2, g2, l2 = _features(4, 2)
    second = store.append(k2, g2, l2)
    assert sorted(p.name for p in (tmp_path / "s").glob("part-*")) == [ahead.name, second.name]
    assert [k.decode() for k in FeatureStore(tmp_path / "s").keys()] == k1 + k2


def test_float16_store_holds_half_the_bytes_within_its_rounding(tmp_path):
    k, g, loc = _features(64, 3, g=32, s=4, d=16)
    s32, s16 = FeatureStore.create(tmp_path / "a", 32, 4, 16), FeatureStore.create(tmp_path / "b", 32, 4, 16, "float16")
    s32.append(k, g, loc), s16.append(k, g, loc)
    assert s16.disk_bytes() < 0.6 * s32.disk_bytes()
    got = s16.gather("local", np.arange(64))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, loc, rtol=1e-3, atol=1e-3)
    assert not np.array_equal(got, loc)  # really stored in half precision
    np.testing.assert_array_equal(got, loc.astype(np.float16).astype(np.float32))  # NumPy's rounding, read back exactly


def test_float16_reads_convert_every_kind_of_value_exactly(tmp_path):
    """Normal, subnormal, signed zero and the largest values of float16 come back as NumPy converts them."""
    special = np.array([0.0, -0.0, 1.0, -2.5, 6.0e-8, -6.0e-8, 3.0e-5, 65504.0, -65504.0, 6.1e-5, 1e-3, 0.3333], np.float32)
    g = np.tile(special, (3, 1))
    loc = np.tile(special, (3, 2, 1)) * np.array([1, -1, 0.5], np.float32)[:, None, None]
    store = FeatureStore.create(tmp_path / "s", 12, 2, 12, "float16")
    store.append(["a", "b", "c"], g, loc)
    want = loc.astype(np.float16).astype(np.float32)
    got = store.gather("local", [2, 0, 1])
    np.testing.assert_array_equal(got, want[[2, 0, 1]])
    assert np.array_equal(np.signbit(got), np.signbit(want[[2, 0, 1]]))  # -0.0 stays negative
    np.testing.assert_array_equal(np.concatenate([b for _, b in store.global_blocks(rows=2)]), g.astype(np.float16).astype(np.float32))


def test_wrong_input_is_refused_naming_what_was_expected(tmp_path):
    store = FeatureStore.create(tmp_path / "s", 6, 3, 4)
    with pytest.raises(StoreError, match=r"holds .*'dtype': 'float32'.*asked for .*'dtype': 'float16'"):
        FeatureStore.create(tmp_path / "s", 6, 3, 4, "float16")
    k, g, loc = _features(3, 4)
    with pytest.raises(StoreError, match=r"appending 3 keys, global \(3, 5\).*\[n, 6\]"):
        store.append(k, g[:, :5], loc)
    g[1, 2] = np.nan
    with pytest.raises(NonFiniteFeatures, match="1 of 3 images"):
        store.append(k, g, loc)
    g[1, 2] = 1e6  # finite in float32, inf in float16
    half = FeatureStore.create(tmp_path / "h", 6, 3, 4, "float16")
    with pytest.raises(NonFiniteFeatures, match=r"as float16"):
        half.append(k, g, loc)
    assert len(store) == len(half) == 0 and not list((tmp_path / "s").glob("part-*"))


def test_a_truncated_part_is_named(tmp_path):
    store = FeatureStore.create(tmp_path / "s", 6, 3, 4)
    part = store.append(*_features(4, 5))
    f = part / "local.npy"
    os.truncate(f, f.stat().st_size - 10)
    with pytest.raises(StoreError, match=rf"{part.name}: unreadable part .*truncated.*remove that folder"):
        FeatureStore(tmp_path / "s")


def test_npz_row_chunks_read_a_member_in_pieces(tmp_path):
    """How evaluate reads a feature file's stripes without the whole float32 member: stored and
    compressed archives, in chunks; a missing key and a truncated file are named."""
    from alignedreid.features.files import npz_row_chunks
    from alignedreid.foundation.errors import PipelineError

    local = np.random.default_rng(0).standard_normal((11, 3, 5)).astype(np.float32)
    for write in (np.savez, np.savez_compressed):
        write(tmp_path / "f.npz", local=local, pid=np.arange(11))
        chunks = list(npz_row_chunks(tmp_path / "f.npz", "local", 4))
        assert [s for s, _ in chunks] == [0, 4, 8] and [len(c) for _, c in chunks] == [4, 4, 3]
        np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), local)
    with pytest.raises(PipelineError, match=r"f.npz: missing array 'global'"):
        list(npz_row_chunks(tmp_path / "f.npz", "global", 4))
    np.savez(tmp_path / "f.npz", local=local)
    data = (tmp_path / "f.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(PipelineError, match=r"cut.npz: array 'local'"):
        list(npz_row_chunks(tmp_path / "cut.npz", "local", 4))
