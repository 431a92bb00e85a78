"""The C++ program's files, the Python reference features, parity, and the export they rest on."""

import json

import mindspore as ms
import numpy as np
import onnx
import pandas as pd
import pytest

from alignedreid.data.prepare import prepare_dataset
from alignedreid.features.files import load_features, save_features
from alignedreid.features.parity import ParityError, check_parity, parity
from alignedreid.features.python_ref import extract, python_features, sample_rows
from alignedreid.foundation.config import resolve
from alignedreid.foundation.errors import CheckpointError, PipelineError
from alignedreid.model.checkpoint import load_trained
from alignedreid.model.network import build_model
from alignedreid.serving.cpp_program import collect_cpp_outputs, preprocess
from alignedreid.serving.export import export_model
from alignedreid.training.quick_eval import quick_global_map

SMALL = {"seed": 4, "train_ids": 3, "test_ids": 3, "images_per_id": 4, "cameras": 3, "queries_per_id": 1, "distractors": 2, "junk": 1}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    prepare_dataset(resolve({"dataset": {"synthetic": SMALL}})["dataset"], d, work_dir=d, workers=2)
    return d


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_seed(2)
    net = build_model(3, 18, local_dim=8)
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    ms.save_checkpoint(net, str(path))
    return path


def test_preprocess_writes_eval_tensors_in_manifest_order(data, tmp_path):
    n = preprocess(data / "query.csv", tmp_path / "in", 64, 32, workers=1, layout="files")
    q = pd.read_csv(data / "query.csv")
    assert n == len(q) and sorted(p.name for p in (tmp_path / "in").iterdir()) == [f"{i:06d}.bin" for i in range(n)]
    x = np.fromfile(tmp_path / "in" / "000001.bin", np.float32)
    assert x.size == 3 * 64 * 32 and -3 < x.min() < x.max() < 3  # ImageNet-normalised
    ms.set_context(mode=ms.PYNATIVE_MODE)
    from alignedreid.data.loader import eval_dataset

    first = next(eval_dataset(q, 64, 32, batch_size=2).create_tuple_iterator(output_numpy=True))[0]
    np.testing.assert_array_equal(first[1].ravel(), x)


def test_collect_cpp_outputs_round_trip_and_errors(data, tmp_path):
    q = pd.read_csv(data / "query.csv")
    out = tmp_path / "out"
    out.mkdir()
    rng = np.random.default_rng(0)
    g, stripes = rng.random((len(q), 6), np.float32), rng.random((len(q), 6, 2), np.float32)
    for i in range(len(q)):
        g[i].tofile(out / f"{i:06d}_0.bin")
        stripes[i].tofile(out / f"{i:06d}_1.bin")
    info = collect_cpp_outputs(data / "query.csv", out, tmp_path / "f.npz")
    assert info == {"rows": len(q), "global_dim": 6, "stripes": 2}
    f = load_features(tmp_path / "f.npz")
    np.testing.assert_array_equal(f.global_, g)
    np.testing.assert_array_equal(f.local, stripes.transpose(0, 2, 1))  # stripes first in feature files
    assert f.pid.tolist() == q.pid.tolist() and f.path.tolist() == q.path.tolist()
    (out / "000001_1.bin").unlink()
    with pytest.raises(PipelineError, match=r"missing C\+\+ output for row 1 .*expected 000001_0.bin and 000001_1.bin"):
        collect_cpp_outputs(data / "query.csv", out, tmp_path / "g.npz")
    assert not (tmp_path / "g.npz").exists()


def _features(path, g, loc):
    n = len(g)
    save_features(path, g, loc, np.arange(n), np.zeros(n), [f"{i}.jpg" for i in range(n)])
    return str(path)


def test_parity_measures_and_fails_beyond_tolerance(tmp_path):
    g = np.array([[1, 0, 0, 0], [0, 2, 0, 0], [600, 0, 0, 0]], np.float32)
    loc = np.ones((3, 2, 4), np.float32)
    a = _features(tmp_path / "a.npz", g, loc)
    b = _features(tmp_path / "b.npz", g + np.array([[0, 5e-5, 0, 0], [0, 0, 0, 0], [0, 0, 4e-3, 0]], np.float32), loc)
    res = parity([a], [b])
    # compared as evaluation sees them: L2-normalised (the 4e-3 on a norm of 600 is 7e-6 of it)
    assert res["ok"] and res["global_max_abs_diff"] == pytest.approx(5e-5, rel=1e-2) and res["local_max_abs_diff"] == 0
    assert res["global_raw_max_abs_diff"] == pytest.approx(4e-3, rel=1e-2) and res["global_raw_max_rel_diff"] == pytest.approx(5e-5, rel=1e-2)
    check_parity(res)
    c = _features(tmp_path / "c.npz", g, loc - 3e-3)  # the stripes are compared as they are
    bad = parity([a, a], [b, c])
    assert not bad["ok"] and bad["max_abs_diff"] == pytest.approx(3e-3, rel=1e-2)
    with pytest.raises(ParityError, match=r"differ by 3\.000e-03 .*above the tolerance 0\.0001"):
        check_parity(bad)
    d = _features(tmp_path / "d.npz", g[:2], loc[:2])
    with pytest.raises(PipelineError, match="have different shapes"):
        parity([a], [d])


def test_python_features_and_quick_eval(data, checkpoint, tmp_path):
    python_features(
        checkpoint, data / "query.csv", tmp_path / "q.npz", {"depth": 18, "height": 64, "width": 32, "conv_impl": "native"}, 0, "CPU", False
    )
    f = load_features(tmp_path / "q.npz")
    q = pd.read_csv(data / "query.csv")
    assert f.global_.shape == (len(q), 512) and f.local.shape == (len(q), 2, 512)
    np.testing.assert_allclose(np.linalg.norm(f.local, axis=2), 1.0, atol=1e-5)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = load_trained(checkpoint, 18, "unfold")
    g2, l2 = extract(net, q, 64, 32, flip=False, batch_size=2, workers=1)
    np.testing.assert_allclose(g2, f.global_, rtol=1e-4, atol=1e-4)  # graph + native = PyNative + im2col
    res = quick_global_map(net, q, pd.read_csv(data / "gallery.csv"), 64, 32)
    assert set(res) == {"mAP", "rank1"} and 0 < res["mAP"] <= 1


def test_python_features_in_shards_join_into_the_unsharded_file(data, checkpoint, tmp_path, monkeypatch):
    """features_python in shards (evaluation.feature_source python): cut at whole batches, joined in
    order, the shards give the one-job file byte for byte in its arrays; a sample stays a sample;
    shards that overlap are refused."""
    from alignedreid.features import python_ref
    from alignedreid.features.files import join_feature_files

    monkeypatch.setattr(python_ref, "BATCH", 4)  # a few batches in this small gallery
    cfg = {"depth": 18, "height": 64, "width": 32, "conv_impl": "native"}
    n = len(pd.read_csv(data / "gallery.csv"))
    python_features(checkpoint, data / "gallery.csv", tmp_path / "whole.npz", cfg, 0, "CPU", False)
    parts = [tmp_path / f"g.{k}.npz" for k in range(3)]
    rows = [python_features(checkpoint, data / "gallery.csv", p, cfg, 0, "CPU", False, (k, 3)) for k, p in enumerate(parts)]
    assert sum(rows) == n and all(rows) and n > 8  # three non-empty shards
    assert join_feature_files(parts, tmp_path / "joined.npz", n) == n
    whole, joined = load_features(tmp_path / "whole.npz"), load_features(tmp_path / "joined.npz")
    assert joined.complete
    for k in ("global_", "local", "pid", "camid", "path"):
        np.testing.assert_array_equal(getattr(joined, k), getattr(whole, k), err_msg=k)
    sample = [tmp_path / f"s.{k}.npz" for k in range(2)]
    for k, p in enumerate(sample):
        python_features(checkpoint, data / "gallery.csv", p, cfg, 5, "CPU", False, (k, 2))
    join_feature_files(sample, tmp_path / "sample.npz", n)
    s = load_features(tmp_path / "sample.npz")
    assert s.sampled and s.row.tolist() == sample_rows(n, 5).tolist()
    with pytest.raises(PipelineError, match="overlap or are out of order"):
        join_feature_files([parts[1], parts[0]], tmp_path / "bad.npz", n)
    assert not (tmp_path / "bad.npz").exists()


def test_export_writes_valid_onnx_with_the_eval_outputs(checkpoint, tmp_path):
    written = export_model(
        checkpoint, tmp_path, {"depth": 18, "height": 64, "width": 32}, {"batch_size": 2, "formats": ["MINDIR", "ONNX", "AIR"]}, "CPU"
    )
    assert set(written) == {"MINDIR", "ONNX"}  # AIR needs Ascend: skipped with a warning
    model = onnx.load(written["ONNX"])
    onnx.checker.check_model(model)
    dims = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output]
    assert dims == [[2, 512], [2, 512, 2]]
    assert not list(tmp_path.glob("*.part*"))


def test_load_trained_refuses_wrong_checkpoints(checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match=r"lacks \d+ network tensors .*model.depth=50"):
        load_trained(checkpoint, 50)
    ms.save_checkpoint([{"name": "w", "data": ms.Tensor(np.zeros(2, np.float32))}], str(tmp_path / "other.ckpt"))
    with pytest.raises(
        CheckpointError, match=r"no classifier \('classifier.weight', the model zoo's 'end_point.weight'\); not an AlignedReID training checkpoint"
    ):
        load_trained(tmp_path / "other.ckpt", 18)


def test_packed_inputs_hold_the_same_tensors_as_per_image_files(data, tmp_path):
    from alignedreid.data.loader import IMAGENET_MEAN, IMAGENET_STD

    n = preprocess(data / "gallery.csv", tmp_path / "g.u8", 64, 32, workers=1, layout="packed")
    preprocess(data / "gallery.csv", tmp_path / "files", 64, 32, workers=1, layout="files")
    packed = np.fromfile(tmp_path / "g.u8", np.uint8).reshape(n, 64, 32, 3)
    assert (tmp_path / "g.u8").stat().st_size == n * 64 * 32 * 3  # a quarter of float32, one file
    for i in (0, n - 1):
        want = np.fromfile(tmp_path / "files" / f"{i:06d}.bin", np.float32).reshape(3, 64, 32)
        got = ((packed[i].astype(np.float32) - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)).transpose(2, 0, 1)
        np.testing.assert_allclose(got, want, atol=1e-6)  # what the C++ program computes from the packed file


def test_packed_cpp_outputs_are_read_like_per_image_files(data, tmp_path):
    q = pd.read_csv(data / "query.csv")
    rng = np.random.default_rng(1)
    g, stripes = rng.random((len(q), 6), np.float32), rng.random((len(q), 6, 2), np.float32)
    (tmp_path / "out").mkdir()
    g.tofile(tmp_path / "out" / "output_0.f32")
    stripes.tofile(tmp_path / "out" / "output_1.f32")
    collect_cpp_outputs(data / "query.csv", tmp_path / "out", tmp_path / "f.npz")
    f = load_features(tmp_path / "f.npz")
    np.testing.assert_array_equal(f.local, stripes.transpose(0, 2, 1))
    assert f.complete
    (tmp_path / "out" / "output_1.f32").write_bytes(b"\0" * 12)
    with pytest.raises(PipelineError, match=r"output_1.f32 holds 3 values, not 3 rows of stripes of 6 channels"):
        collect_cpp_outputs(data / "query.csv", tmp_path / "out", tmp_path / "h.npz")


def test_parity_on_a_sample_matches_rows(tmp_path):
    from alignedreid.features.python_ref import sample_rows

    rows = sample_rows(10, 4)
    assert len(rows) == 4 and list(rows) == sorted(set(rows)) and list(sample_rows(10, 4)) == list(rows)  # fixed, seeded
    assert list(sample_rows(3, 4)) == [0, 1, 2] and list(sample_rows(3, 0)) == [0, 1, 2]
    g = np.random.default_rng(0).random((10, 4), np.float32)
    loc = np.ones((10, 2, 4), np.float32)
    paths = [f"{i}.jpg" for i in range(10)]
    save_features(tmp_path / "cpp.npz", g, loc, np.arange(10), np.zeros(10), paths)
    save_features(tmp_path / "py.npz", g[rows] + 1e-6, loc[rows], rows, np.zeros(4), [paths[i] for i in rows], row=rows)
    res = parity([str(tmp_path / "cpp.npz")], [str(tmp_path / "py.npz")])
    assert res["ok"] and res["rows_compared"] == 4 and res["global_max_abs_diff"] < 2e-6
    save_features(tmp_path / "wrong.npz", g[rows], loc[rows], rows, np.zeros(4), ["x.jpg"] * 4, row=rows)
    with pytest.raises(PipelineError, match="list other images for the same rows"):
        parity([str(tmp_path / "cpp.npz")], [str(tmp_path / "wrong.npz")])


def test_import_checkpoint_checks_and_copies(checkpoint, tmp_path):
    from alignedreid.training.imported import import_checkpoint

    summary = import_checkpoint(checkpoint, 18, 64, 32, tmp_path / "train")
    assert summary["source"] == "checkpoint" and summary["num_classes"] == 3 and len(summary["checkpoint_sha256"]) == 64
    assert (tmp_path / "train" / "log.csv").read_text().startswith("epoch,step,")
    a, b = load_trained(checkpoint, 18), load_trained(tmp_path / "train" / "model.ckpt", 18)
    for p, q in zip(a.get_parameters(), b.get_parameters()):
        np.testing.assert_array_equal(p.asnumpy(), q.asnumpy())
    params = {p.name: p for p in a.get_parameters()}
    params["local_conv.weight"] = ms.Parameter(ms.Tensor(np.zeros((8, 256, 1, 1), np.float32)), name="local_conv.weight")
    ms.save_checkpoint([{"name": f"network.{k}", "data": v} for k, v in params.items()], str(tmp_path / "wrapped.ckpt"))
    with pytest.raises(CheckpointError, match=r"parameter 'local_conv.weight' has shape \(8, 256, 1, 1\), .* expects \(8, 512, 1, 1\)"):
        import_checkpoint(tmp_path / "wrapped.ckpt", 18, 64, 32, tmp_path / "t2")  # wrapper prefix stripped, shape named
    assert not (tmp_path / "t2" / "model.ckpt").exists()


def test_onnx_runtime_parity_on_the_reference_sample(data, checkpoint, tmp_path):
    from alignedreid.features.onnx_ref import onnx_parity

    written = export_model(checkpoint, tmp_path, {"depth": 18, "height": 64, "width": 32}, {"batch_size": 1, "formats": ["ONNX"]}, "CPU")
    model = {"depth": 18, "height": 64, "width": 32, "conv_impl": "native"}
    python_features(checkpoint, data / "query.csv", tmp_path / "q.npz", model, 2, "CPU", False)  # a 2-row sample, as parity has
    res = onnx_parity(written["ONNX"], [data / "query.csv"], [tmp_path / "q.npz"], 64, 32, 1e-4, 2, False)
    assert res["ok"] and res["rows_compared"] == 2 and res["max_abs_diff"] < 1e-4
    ref = load_features(tmp_path / "q.npz")
    save_features(tmp_path / "off.npz", ref.global_, ref.local + 1e-3, ref.pid, ref.camid, ref.path, row=ref.row)
    off = onnx_parity(written["ONNX"], [data / "query.csv"], [tmp_path / "off.npz"], 64, 32, 1e-4, 2, False)
    assert not off["ok"] and off["local_max_abs_diff"] == pytest.approx(1e-3, rel=0.05)


@pytest.mark.parametrize("n,shards,batch", [(12, 4, 4), (13, 3, 4), (5, 4, 4), (1, 1, 16), (64, 7, 3)])
def test_shards_cover_every_row_once_in_order_cut_at_whole_batches(n, shards, batch):
    from alignedreid.serving.shards import shard_rows

    parts = shard_rows(n, shards, batch)
    assert len(parts) == shards and [r for p in parts for r in p] == list(range(n))
    assert all(p.start % batch == 0 for p in parts if p)  # each image meets the batch neighbours of one unsharded run
    sizes = [-(-len(p) // batch) for p in parts]  # batches per shard: dealt evenly (the first take the extra)
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_sharded_inputs_and_outputs_gather_into_the_unsharded_feature_file(data, tmp_path):
    """preprocess of each shard holds the unsharded file's bytes of its rows; the gathered outputs of
    3 shards (one of them empty: more shards than batches) make the same feature file, byte for byte."""
    from alignedreid.serving.shards import shard_rows

    q = pd.read_csv(data / "gallery.csv")
    n, batch = len(q), 8
    whole = tmp_path / "all.u8"
    preprocess(data / "gallery.csv", whole, 64, 32, workers=1, layout="packed")
    parts = shard_rows(n, -(-n // batch) + 1, batch)
    assert len(parts) >= 3 and not parts[-1]  # more shards than batches: the last is empty
    rng = np.random.default_rng(3)
    g, stripes = rng.random((n, 6), np.float32), rng.random((n, 6, 2), np.float32)
    (tmp_path / "whole").mkdir()
    g.tofile(tmp_path / "whole" / "output_0.f32")
    stripes.tofile(tmp_path / "whole" / "output_1.f32")
    collect_cpp_outputs(data / "gallery.csv", tmp_path / "whole", tmp_path / "one.npz")
    dirs, image = [], 64 * 32 * 3
    for k, rows in enumerate(parts):
        preprocess(data / "gallery.csv", tmp_path / f"s{k}.u8", 64, 32, workers=1, layout="packed", rows=rows)
        assert (tmp_path / f"s{k}.u8").read_bytes() == whole.read_bytes()[rows.start * image : rows.stop * image]
        d = tmp_path / f"out{k}"
        d.mkdir()
        (d / "inputs.json").write_text(json.dumps({"images": len(rows)}))  # as run_cpp_program records it
        if rows:  # the program writes nothing for an empty shard
            g[rows.start : rows.stop].tofile(d / "output_0.f32")
            stripes[rows.start : rows.stop].tofile(d / "output_1.f32")
        dirs.append(d)
    collect_cpp_outputs(data / "gallery.csv", dirs, tmp_path / "gathered.npz", batch=batch)
    assert (tmp_path / "gathered.npz").read_bytes() == (tmp_path / "one.npz").read_bytes()
    with pytest.raises(PipelineError, match=r"out0: the C\+\+ program ran on 8 images, where 4 manifest rows are expected"):
        collect_cpp_outputs(data / "gallery.csv", dirs, tmp_path / "bad.npz", batch=batch // 2)  # other cuts: refused
    assert not (tmp_path / "bad.npz").exists()
    rows = parts[1]  # a shard whose program had other outputs (3 channels, 4 stripes): refused, named
    rng.random((len(rows), 3), np.float32).tofile(dirs[1] / "output_0.f32")
    rng.random((len(rows), 3, 4), np.float32).tofile(dirs[1] / "output_1.f32")
    with pytest.raises(PipelineError, match=r"out1: outputs of 3 channels x 4 stripes, where the first shard's are 6 x 2"):
        collect_cpp_outputs(data / "gallery.csv", dirs, tmp_path / "bad.npz", batch=batch)
    for f in ("output_0.f32", "output_1.f32"):  # and one without packed outputs
        (dirs[1] / f).unlink()
    with pytest.raises(PipelineError, match=r"out1: no output_0.f32 / output_1.f32, where the first shard's outputs are packed"):
        collect_cpp_outputs(data / "gallery.csv", dirs, tmp_path / "bad.npz", batch=batch)
    assert not (tmp_path / "bad.npz").exists()
