"""Lower-precision serving: the calibration sample (seeded, training split only), the accuracy check
against fp32, the environment the C++ program gets (the CPU's own ISA), and the config rules."""

import numpy as np
import pandas as pd
import pytest

from alignedreid.data.prepare import prepare_dataset
from alignedreid.evaluation.run import check_drop, precision_drop
from alignedreid.foundation.config import resolve
from alignedreid.foundation.cpu_runtime import SET_BY_PACKAGE, apply_cpu_defaults, program_env
from alignedreid.foundation.errors import ConfigError, PipelineError
from alignedreid.serving.cpp_run import cpu_has_bf16
from alignedreid.serving.quantize import calibration_images, calibration_rows


def test_calibration_rows_are_seeded_sorted_and_bounded():
    rows = calibration_rows(1000, 300, seed=0)
    assert len(rows) == 300 and list(rows) == sorted(set(rows)) and rows.max() < 1000
    assert list(calibration_rows(1000, 300, seed=0)) == list(rows)  # the same sample on every run
    assert list(calibration_rows(1000, 300, seed=1)) != list(rows)
    assert list(calibration_rows(5, 300, seed=0)) == [0, 1, 2, 3, 4]  # a small split is used whole
    with pytest.raises(PipelineError, match="infer.calibration.size must be positive"):
        calibration_rows(10, 0, 0)


def test_calibration_images_come_from_the_training_split_only(tmp_path):
    spec = {"seed": 2, "train_ids": 3, "test_ids": 3, "images_per_id": 4, "cameras": 3, "queries_per_id": 1, "distractors": 2, "junk": 1}
    prepare_dataset(resolve({"dataset": {"synthetic": spec}})["dataset"], tmp_path, work_dir=tmp_path, workers=2)
    images, paths = calibration_images(tmp_path / "train.csv", 5, seed=0, height=64, width=32)
    assert images.shape == (5, 3, 64, 32) and images.dtype == np.float32
    assert -3 < images.min() < images.max() < 3  # ImageNet-normalised as the evaluation images
    train = set(pd.read_csv(tmp_path / "train.csv").path)
    test = set(pd.read_csv(tmp_path / "query.csv").path) | set(pd.read_csv(tmp_path / "gallery.csv").path)
    assert set(paths) <= train and not set(paths) & test


def _metrics(map_, r1):
    return {"mAP": map_, "cmc": [r1, 1.0]}


def test_accuracy_drop_is_checked_naming_both_numbers():
    ref = {"global": _metrics(0.80, 0.90), "global_local": _metrics(0.82, 0.92)}
    low = {"global": _metrics(0.795, 0.90), "global_local": _metrics(0.80, 0.91)}
    drop = precision_drop(low, ref)
    assert drop["global"]["mAP_points"] == pytest.approx(0.5) and drop["global_local"]["rank1_points"] == pytest.approx(1.0)
    check_drop(drop, low, ref, "int8", 2.5)  # within the limit
    check_drop(drop, low, ref, "int8", None)  # report only
    with pytest.raises(
        PipelineError,
        match=r"infer.precision int8: global_local mAP 80.00% is 2.00 points below fp32's 82.00%, more than infer.max_map_drop \(1 points\)",
    ):
        check_drop(drop, low, ref, "int8", 1.0)


def test_the_cpp_program_runs_without_the_isa_cap_set_for_mindspore():
    env = {"PATH": "/bin"}
    apply_cpu_defaults(env)
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env[SET_BY_PACKAGE] == "ONEDNN_MAX_CPU_ISA"
    prog = program_env(env)
    assert "ONEDNN_MAX_CPU_ISA" not in prog and SET_BY_PACKAGE not in prog and prog["PATH"] == "/bin"
    user = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}  # set by the user: kept for every process
    apply_cpu_defaults(user)
    assert program_env(user)["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE"
    child = dict(env)  # a process started by one that applied the defaults applies them again: still ours
    apply_cpu_defaults(child)
    assert "ONEDNN_MAX_CPU_ISA" not in program_env(child)


def test_bf16_needs_the_instructions():
    assert cpu_has_bf16("flags : fpu avx2 avx512f avx512_bf16 avx512_vnni")
    assert cpu_has_bf16("flags : fpu avx2 amx_bf16 amx_tile")
    assert not cpu_has_bf16("flags : fpu sse4_2 avx2 fma avx512f avx512_vnni")


def test_lower_precision_needs_the_cpu_backend():
    assert resolve({"infer": {"precision": "int8"}})["infer"]["calibration"] == {"size": 300, "seed": 0}
    with pytest.raises(ConfigError, match="infer.precision int8 needs infer.backend cpu"):
        resolve({"infer": {"precision": "int8", "backend": "ascend", "batch_size": 1}})


def _block_images(rng, n, scale, height=256, width=128):
    """Images of plain noisy colour blocks (32 px), ImageNet-normalised scale ``scale``."""
    out = np.zeros((n, 3, height, width), np.float32)
    for img in out:
        for y in range(0, height, 32):
            for x in range(0, width, 32):
                img[:, y : y + 32, x : x + 32] = rng.normal(0, scale, (3, 1, 1))
        img += rng.normal(0, 0.1 * scale, img.shape).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def resnet50_onnx(tmp_path_factory):
    """An untrained ResNet-50 AlignedReID network at 256x128, exported to ONNX as the export stage does."""
    import mindspore as ms

    from alignedreid.model.network import build_model

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    ms.set_seed(0)
    net = build_model(10, 50, 128)
    net.set_train(False)
    base = tmp_path_factory.mktemp("r50") / "model"
    ms.export(net, ms.Tensor(np.zeros((1, 3, 256, 128), np.float32)), file_name=str(base), file_format="ONNX")
    return base.with_suffix(".onnx")


@pytest.mark.slow
def test_int8_stripes_stay_finite_where_quantised_heads_divide_by_zero(resnet50_onnx):
    """Reproducer of the Market-scale failure: calibrated on strong noise blocks, a quantised head turns
    the stripes of low-contrast crops into NaN/inf (norm quantised to 0). With the heads kept in float
    every output is finite and the stripes stay unit vectors close to fp32."""
    import nncf
    import openvino as ov
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    from alignedreid.serving.quantize import float_head_nodes, quantize_ov

    rng = np.random.default_rng(0)
    calibration = _block_images(rng, 24, 2.0)
    faint = _block_images(rng, 6, 0.05)
    core = ov.Core()
    model = ov.convert_model(str(resnet50_onnx))
    model.reshape([1, 3, 256, 128])
    reference = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def outputs(compiled):
        res = [compiled(img[None]) for img in faint]
        return np.concatenate([r[compiled.outputs[0]] for r in res]), np.concatenate([r[compiled.outputs[1]] for r in res])

    # the failing case, as quantised before: every operation quantisable
    naive = nncf.quantize(
        model,
        nncf.Dataset(list(calibration), lambda img: img[None]),
        subset_size=len(calibration),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        fast_bias_correction=True,
        advanced_parameters=nncf.AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX),
    )
    _, naive_local = outputs(core.compile_model(naive, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}))
    assert not np.isfinite(naive_local).all(), "the reproducer no longer reaches the failing case"

    kept = float_head_nodes(model)
    assert any("Sqrt" in n for n in kept) and any("ReduceMax" in n for n in kept)
    fixed, _ = quantize_ov(model, calibration)
    quantisers_into_heads = [
        op.get_friendly_name()
        for op in fixed.get_ordered_ops()
        if op.get_type_name() == "FakeQuantize" and any(t.get_node().get_friendly_name() in kept for t in op.output(0).get_target_inputs())
    ]
    assert quantisers_into_heads == []
    g, local = outputs(core.compile_model(fixed, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}))
    assert np.isfinite(g).all() and np.isfinite(local).all()
    np.testing.assert_allclose(np.linalg.norm(local, axis=1), 1.0, atol=1e-3)  # [N, C, S]: unit stripes
    _, ref_local = outputs(reference)
    cosine = (local * ref_local).sum(axis=1)
    assert cosine.min() > 0.9, cosine.min()
