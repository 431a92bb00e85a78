"""Evaluation stores (evaluation/stored.py): a feature file written once as a mapped store, evaluated
with the feature file's numbers."""

import json

import numpy as np
import pytest

from tests.conftest import eval_section
from tests.unit.evaluation.test_run import _identity_features


def _files(tmp_path):
    from alignedreid.features.files import save_features

    q, g = _identity_features(dtype=np.float32)
    for name, f in (("q", q), ("g", g)):
        save_features(tmp_path / f"{name}.npz", f.global_, f.local, f.pid, f.camid, f.path)
    return tmp_path / "q.npz", tmp_path / "g.npz"


@pytest.mark.parametrize("stripe_dtype", ["float32", "float16"])
@pytest.mark.parametrize("streamed", [False, True])
def test_a_store_evaluates_exactly_as_its_feature_file(tmp_path, monkeypatch, stripe_dtype, streamed):
    """Every metric and per-query row of the four variants (and verification) equals the feature file's,
    in both stripe precisions, on the matrix path and the streamed one (shortlists, re-ranking on the fly)."""
    from alignedreid.evaluation import stored
    from alignedreid.evaluation.run import evaluate_files

    monkeypatch.setattr(stored, "CHUNK_ROWS", 16)  # several chunks, the last one short
    qf, gf = _files(tmp_path)
    for name in ("q", "g"):
        assert stored.write_evaluation_store(tmp_path / f"{name}.npz", tmp_path / f"{name}.store", stripe_dtype) == (40 if name == "q" else 150)
    cfg = {**eval_section(5, 2, shortlist=30, matrix_budget_gb=1e-9 if streamed else 8.0), "stripe_dtype": stripe_dtype}
    want, per_want, _, _, _ = evaluate_files(qf, gf, cfg)
    got, per_got, _, nq, ng = evaluate_files(tmp_path / "q.store", tmp_path / "g.store", cfg)
    assert (nq, ng) == (40, 150)
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    assert per_got.equals(per_want)
    meta = json.loads((tmp_path / "g.store" / "store.json").read_text())
    assert meta["dtype"] == stripe_dtype and meta.get("global_dtype", "float32") == "float32"


def test_a_store_maps_its_arrays_and_never_writes_them(tmp_path):
    """The stage holds the store's arrays as maps of its files (copy-on-write: its files never change)."""
    from alignedreid.evaluation.run import evaluate_files
    from alignedreid.evaluation.stored import open_evaluation_store, write_evaluation_store
    from alignedreid.foundation.io_utils import sha256_of

    _files(tmp_path)
    for name in ("q", "g"):
        write_evaluation_store(tmp_path / f"{name}.npz", tmp_path / f"{name}.store", "float32")
    g = open_evaluation_store(tmp_path / "g.store")
    assert isinstance(g.local, np.memmap) and isinstance(g.global_, np.memmap) and g.unit_local
    np.testing.assert_allclose(np.linalg.norm(g.local, axis=2), 1.0, atol=1e-6)
    before = {p: sha256_of(p) for p in (tmp_path / "g.store").rglob("*.npy")}
    evaluate_files(tmp_path / "q.store", tmp_path / "g.store", {**eval_section(5, 2), "stripe_dtype": "float32"})
    assert {p: sha256_of(p) for p in before} == before


def test_bad_input_is_refused_and_leaves_no_store(tmp_path):
    """A sampled file, non-finite stripes, a store without the stripes the variants need: each named,
    and no folder left behind."""
    from alignedreid.evaluation.run import evaluate_files
    from alignedreid.evaluation.stored import write_evaluation_store
    from alignedreid.features.files import NonFiniteFeatures, save_features
    from alignedreid.foundation.errors import PipelineError

    q, _ = _identity_features(dtype=np.float32)
    save_features(tmp_path / "s.npz", q.global_[:5], q.local[:5], q.pid[:5], q.camid[:5], q.path[:5], row=[0, 2, 4, 6, 8])
    with pytest.raises(PipelineError, match=r"s.npz: holds a sample of 5 rows"):
        write_evaluation_store(tmp_path / "s.npz", tmp_path / "s.store", "float16")
    loc = q.local.copy()
    loc[7, 1, 3] = np.inf
    np.savez(tmp_path / "bad.npz", **{"global": q.global_, "local": loc, "pid": q.pid, "camid": q.camid, "path": q.path})
    with pytest.raises(NonFiniteFeatures, match=r"bad.npz: 1 of .* images .*40/7.jpg"):
        write_evaluation_store(tmp_path / "bad.npz", tmp_path / "bad.store", "float16")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "s.npz"]
    qf, gf = _files(tmp_path)
    for name in ("q", "g"):
        write_evaluation_store(tmp_path / f"{name}.npz", tmp_path / f"{name}.store", "float16", local=False)
    cfg = {**eval_section(5, 2), "stripe_dtype": "float16"}
    with pytest.raises(PipelineError, match=r"q.store: the store holds no stripes"):
        evaluate_files(tmp_path / "q.store", tmp_path / "g.store", cfg)
    only_global = {**cfg, "variants": ["global", "global_rerank"]}
    assert evaluate_files(tmp_path / "q.store", tmp_path / "g.store", only_global)[0]["global"] == evaluate_files(qf, gf, only_global)[0]["global"]


def test_a_damaged_store_is_named_with_how_to_write_it_again(tmp_path):
    """A truncated array, lost labels or a second part: refused naming the file, never evaluated."""
    import shutil

    from alignedreid.evaluation.stored import open_evaluation_store, write_evaluation_store
    from alignedreid.features.store import FeatureStore, StoreError

    _files(tmp_path)
    write_evaluation_store(tmp_path / "g.npz", tmp_path / "g.store", "float16")
    for damage in ("truncated", "labels", "second part"):
        shutil.copytree(tmp_path / "g.store", tmp_path / damage)
        store = FeatureStore(tmp_path / damage)
        if damage == "truncated":
            f = store.parts[0][0] / "local.npy"
            f.write_bytes(f.read_bytes()[:-100])
            want = r"local.npy: .* \(truncated\).*evaluation store: remove the folder"
        elif damage == "labels":
            (tmp_path / damage / "labels.npz").unlink()
            want = r"not an evaluation store .*labels.npz.*--forcerun evaluation_store"
        else:
            store.append(["x"], np.zeros((1, 32), np.float32), np.ones((1, 4, 16), np.float32))
            want = r"2 parts of 151 rows with labels of 150 images; expected one part"
        with pytest.raises(StoreError, match=want):
            open_evaluation_store(tmp_path / damage)
