"""A trained checkpoint of the MindSpore model zoo's AlignedReID++ (research/cv/AlignedReID++) is read
through model.checkpoint. Its parameter names are written here literally, as the zoo's classes
produce them (src/ResNet.py: cell ResNet50 with attributes base, bn, conv1, end_point; the ResNet's
conv1, bn1, layer1..4 of ResidualBlock with conv1-3, bn1-3, down_sample_layer; train.py wraps the
network in CustomWithLossCell as ``_backbone`` and saves the TrainOneStepCell with the Momentum
optimiser's ``moments.*``, ``learning_rate`` and ``global_step``) -- never derived from this
project's model, so a naming difference shows."""

import mindspore as ms
import numpy as np
import pytest

from alignedreid.data.prepare import prepare_dataset
from alignedreid.evaluation import rank
from alignedreid.evaluation.distance import global_distance
from alignedreid.features.files import load_features
from alignedreid.features.python_ref import python_features
from alignedreid.foundation.config import resolve
from alignedreid.model.checkpoint import load_trained, to_project_names
from alignedreid.training.imported import import_checkpoint

BN = ("gamma", "beta", "moving_mean", "moving_variance")
# The zoo's ResNet50(...).base: ResNet(ResidualBlock, [3, 4, 6, 3], [64, 256, 512, 1024], [256, 512, 1024, 2048], [1, 2, 2, 2])
ZOO_LAYERS = {"layer1": (3, 64, 256), "layer2": (4, 256, 512), "layer3": (6, 512, 1024), "layer4": (3, 1024, 2048)}
NUM_CLASSES = 5


def zoo_names_and_shapes() -> dict[str, tuple]:
    """Every network tensor of a trained zoo checkpoint, by the zoo's names, with its shape."""
    out = {"_backbone.base.conv1.weight": (64, 3, 7, 7)}
    out.update({f"_backbone.base.bn1.{b}": (64,) for b in BN})
    for layer, (blocks, cin, cout) in ZOO_LAYERS.items():
        mid = cout // 4
        for i in range(blocks):
            pre = f"_backbone.base.{layer}.{i}."
            first_in = cin if i == 0 else cout
            out[pre + "conv1.weight"] = (mid, first_in, 1, 1)
            out[pre + "conv2.weight"] = (mid, mid, 3, 3)
            out[pre + "conv3.weight"] = (cout, mid, 1, 1)
            for k, c in (("bn1", mid), ("bn2", mid), ("bn3", cout)):
                out.update({f"{pre}{k}.{b}": (c,) for b in BN})
            if i == 0:
                out[pre + "down_sample_layer.0.weight"] = (cout, first_in, 1, 1)
                out.update({f"{pre}down_sample_layer.1.{b}": (cout,) for b in BN})
    out.update({f"_backbone.bn.{b}": (2048,) for b in BN})  # the local branch's BatchNorm2d(2048)
    out["_backbone.conv1.weight"] = (128, 2048, 1, 1)  # the local branch's 1x1 conv 2048 -> 128
    out["_backbone.conv1.bias"] = (128,)
    out["_backbone.end_point.weight"] = (NUM_CLASSES, 2048)
    out["_backbone.end_point.bias"] = (NUM_CLASSES,)
    return out


def write_zoo_checkpoint(path, seed=0) -> dict:
    """A zoo-named checkpoint with random weights, optimiser state and counters; returns {name: array}."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in zoo_names_and_shapes().items():
        v = rng.standard_normal(shape).astype(np.float32) * 0.05
        if name.endswith("moving_variance"):
            v = np.abs(v) + 1.0
        values[name] = v
    entries = [{"name": n, "data": ms.Tensor(v)} for n, v in values.items()]
    entries += [{"name": "moments." + n, "data": ms.Tensor(np.zeros_like(v))} for n, v in values.items() if not n.split(".")[-1].startswith("moving")]
    entries += [
        {"name": "learning_rate", "data": ms.Tensor(np.full(10, 0.05, np.float32))},
        {"name": "global_step", "data": ms.Tensor(np.array([1234], np.int32))},
        {"name": "momentum", "data": ms.Tensor(np.array(0.85, np.float32))},
    ]
    ms.save_checkpoint(entries, str(path))
    return values


@pytest.fixture(scope="module")
def zoo_ckpt(tmp_path_factory):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    path = tmp_path_factory.mktemp("zoo") / "resnet50-300_404.ckpt"
    return path, write_zoo_checkpoint(path)


def test_zoo_names_are_recognised():
    named, dropped, layout = to_project_names(dict.fromkeys([*zoo_names_and_shapes(), "moments._backbone.base.conv1.weight", "global_step"]))
    assert layout == "zoo_reid" and dropped == ["moments._backbone.base.conv1.weight", "global_step"]
    assert "backbone.layer4.2.bn3.moving_variance" in named and "backbone.layer1.0.down_sample_layer.1.gamma" in named
    assert {"local_bn.gamma", "local_conv.weight", "local_conv.bias", "classifier.weight", "classifier.bias"} <= set(named)


def test_zoo_checkpoint_loads_every_tensor_where_it_belongs(zoo_ckpt):
    path, values = zoo_ckpt
    net = load_trained(path, 50)
    assert net.classifier.weight.shape == (NUM_CLASSES, 2048)
    pairs = {
        "_backbone.base.conv1.weight": net.backbone.conv1.weight,
        "_backbone.base.layer3.5.bn3.moving_variance": net.backbone.layer3[5].bn3.moving_variance,
        "_backbone.base.layer2.0.down_sample_layer.0.weight": net.backbone.layer2[0].down_sample_layer[0].weight,
        "_backbone.bn.gamma": net.local_bn.gamma,
        "_backbone.conv1.bias": net.local_conv.bias,
        "_backbone.end_point.weight": net.classifier.weight,
    }
    for zoo_name, param in pairs.items():
        np.testing.assert_array_equal(param.asnumpy(), values[zoo_name], err_msg=zoo_name)
    assert len(list(net.get_parameters())) == len(values)  # every zoo tensor has its place, no parameter is left without one


def test_zoo_checkpoint_evaluates_as_the_same_weights_under_our_names(zoo_ckpt, tmp_path):
    """model.checkpoint's rule (import_checkpoint) turns the zoo checkpoint into this project's names;
    features, hence metrics, of the two files are identical."""
    path, _ = zoo_ckpt
    summary = import_checkpoint(path, 50, 64, 32, tmp_path / "train")
    assert summary["num_classes"] == NUM_CLASSES
    ours = tmp_path / "train" / "model.ckpt"
    data = tmp_path / "data"
    small = {"seed": 3, "train_ids": 2, "test_ids": 3, "images_per_id": 4, "cameras": 3, "queries_per_id": 1, "distractors": 2, "junk": 0}
    prepare_dataset(resolve({"dataset": {"synthetic": small}})["dataset"], data, work_dir=data, workers=2)
    feats = {}
    for tag, ckpt in (("zoo", path), ("ours", ours)):
        for split in ("query", "gallery"):
            python_features(
                ckpt,
                data / f"{split}.csv",
                tmp_path / f"{tag}_{split}.npz",
                {"depth": 50, "height": 64, "width": 32, "conv_impl": "native"},
                0,
                "CPU",
                False,
            )
        feats[tag] = [load_features(tmp_path / f"{tag}_{s}.npz") for s in ("query", "gallery")]
    (zq, zg), (oq, og) = feats["zoo"], feats["ours"]
    np.testing.assert_array_equal(zq.global_, oq.global_)
    np.testing.assert_array_equal(zg.local, og.local)
    cmc_zoo, map_zoo = rank(global_distance(zq.global_, zg.global_), zq.pid, zg.pid, zq.camid, zg.camid, 10)
    cmc_ours, map_ours = rank(global_distance(oq.global_, og.global_), oq.pid, og.pid, oq.camid, og.camid, 10)
    assert map_zoo == map_ours and np.array_equal(cmc_zoo, cmc_ours)
