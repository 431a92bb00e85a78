"""The ``quantize`` stage: post-training INT8 quantisation of the exported ONNX model with NNCF, into
an OpenVINO IR (``model.xml`` + ``model.bin``) that the C++ program runs like the ONNX file.

Calibration uses a seeded sample of the **training** split only (never a query or gallery image),
preprocessed exactly as the evaluation images (decode, bilinear resize, ImageNet normalisation).
Settings, chosen by measurement on the demo's trained model (docs/architecture.md, precision):
NNCF's ``PERFORMANCE`` preset (symmetric quantisation, what the CPU's VNNI kernels run fastest;
``MIXED`` lost 1.5-3.9 mAP points), activation ranges from the calibration minimum and maximum
instead of NNCF's default quantiles (the stripes are a max over the width of the last feature map:
clipping its extreme activations hurts them; worst global-feature cosine to fp32 0.986 -> 0.999),
and fast bias correction (the full one took longer and changed nothing measurable).

The heads stay in float (:func:`float_head_nodes`, given to NNCF as its ignored scope): every
operation between the last pooling of each branch (the global average, the stripes' width-max) and
the model's outputs. Quantised, the stripes' L2 normalisation x / sqrt(max(sum(x^2), eps)) puts
fake-quantisers on the square, the clamp and the norm; an image whose stripe norms fall below half a
quantisation step (a low-contrast crop against calibration images with strong activations) then
divides by a norm of exactly 0 and its stripes become NaN and inf. These operations cost nothing
next to the backbone; the reproducer is tests/unit/test_quantize.py.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from ..data.manifests import read_manifest
from ..foundation.errors import PipelineError
from ..foundation.io_utils import atomic_directory, write_json

log = logging.getLogger(__name__)


def calibration_rows(n_rows: int, size: int, seed: int) -> np.ndarray:
    """Sorted row numbers of the calibration sample: ``size`` rows drawn with ``seed`` (all rows when fewer)."""
    if size <= 0:
        raise PipelineError(f"infer.calibration.size must be positive, got {size}")
    if size >= n_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size, replace=False))


def calibration_images(train_csv, size: int, seed: int, height: int, width: int, workers: int = 2) -> tuple[np.ndarray, list[str]]:
    """float32 [n, 3, height, width] calibration inputs from the training manifest, and their paths."""
    from ..data.loader import eval_dataset

    df = read_manifest(train_csv)
    if len(df) == 0:
        raise PipelineError(f"{train_csv}: no training image to calibrate the quantisation with")
    sub = df.iloc[calibration_rows(len(df), size, seed)].reset_index(drop=True)
    data = eval_dataset(sub, height, width, batch_size=32, workers=workers)
    images = np.concatenate([b for b, _ in data.create_tuple_iterator(num_epochs=1, output_numpy=True)]).astype(np.float32)
    return images, sub["path"].astype(str).tolist()


# pooling operations where the heads begin: everything after them, up to the outputs, stays in float
HEAD_START = frozenset({"ReduceMax", "ReduceMean", "AvgPool"})


def float_head_nodes(model) -> list[str]:
    """Friendly names of the operations from each output back to (and including) the last pooling of
    its branch (HEAD_START): the normalisations, divisions and reshapes of the heads."""
    names: set[str] = set()
    todo = [r.input_value(0).get_node() for r in model.get_results()]
    while todo:
        node = todo.pop()
        name, kind = node.get_friendly_name(), node.get_type_name()
        if name in names or kind in ("Constant", "Parameter"):
            continue
        names.add(name)
        if kind not in HEAD_START:
            todo.extend(v.get_node() for v in node.input_values())
    if not any(n for n in names):
        raise PipelineError("quantize: found no head operations to keep in float (the exported model has no outputs?)")
    return sorted(names)


def quantize_ov(model, images, size: int | None = None):
    """NNCF post-training INT8 quantisation of an OpenVINO model (batch 1) calibrated on ``images``
    (float32 [n, 3, H, W]): PERFORMANCE preset, min-max activation ranges, fast bias correction, the
    heads kept in float. Returns (quantised model, names kept in float)."""
    import nncf
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    keep = float_head_nodes(model)
    dataset = nncf.Dataset(list(images), lambda img: img[None])
    quantized = nncf.quantize(
        model,
        dataset,
        subset_size=size or len(images),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        fast_bias_correction=True,
        ignored_scope=nncf.IgnoredScope(names=keep, validate=False),
        advanced_parameters=nncf.AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX),
    )
    return quantized, keep


def quantize_model(onnx_path, train_csv, out_dir, height: int, width: int, size: int, seed: int, workers: int = 2) -> dict:
    """Quantise ``onnx_path`` to INT8 and write ``out_dir``/model.xml, model.bin and calibration.json
    (the sample's size, seed and image paths). The folder appears complete or not at all."""
    import nncf
    import openvino as ov

    t0 = time.perf_counter()
    images, paths = calibration_images(train_csv, size, seed, height, width, workers)
    log.info("calibration: %d training images (seed %d) from %s", len(images), seed, train_csv)
    model = ov.convert_model(str(onnx_path))
    model.reshape([1, 3, height, width])
    quantized, kept = quantize_ov(model, images)
    log.info("kept in float (the heads after the last pooling): %s", ", ".join(kept))
    quantized.reshape([-1, 3, height, width])  # any batch, as the ONNX export
    summary = {
        "calibration_images": len(images),
        "calibration_source": str(train_csv),
        "calibration_seed": seed,
        "preset": "PERFORMANCE",
        "fast_bias_correction": True,
        "activation_ranges": "min-max",
        "float_heads": kept,
        "nncf": nncf.__version__,
        "openvino": ov.get_version(),
        "seconds": None,
    }
    with atomic_directory(out_dir) as tmp:
        ov.save_model(quantized, str(Path(tmp) / "model.xml"), compress_to_fp16=False)
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        summary["model_bytes"] = os.path.getsize(Path(tmp) / "model.bin")
        write_json(Path(tmp) / "calibration.json", {**summary, "images": paths})
    log.info("quantised %s in %.0f s: %s (%.1f MB)", onnx_path, summary["seconds"], out_dir, summary["model_bytes"] / 2**20)
    return summary
