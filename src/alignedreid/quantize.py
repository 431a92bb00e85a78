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
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from .data.manifests import read_manifest
from .errors import PipelineError
from .io_utils import atomic_directory, write_json

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
    from .data.loader import eval_dataset

    df = read_manifest(train_csv)
    if len(df) == 0:
        raise PipelineError(f"{train_csv}: no training image to calibrate the quantisation with")
    sub = df.iloc[calibration_rows(len(df), size, seed)].reset_index(drop=True)
    data = eval_dataset(sub, height, width, batch_size=32, workers=workers)
    images = np.concatenate([b for b, _ in data.create_tuple_iterator(num_epochs=1, output_numpy=True)]).astype(np.float32)
    return images, sub["path"].astype(str).tolist()


def quantize_model(onnx_path, train_csv, out_dir, height: int, width: int, size: int, seed: int, workers: int = 2) -> dict:
    """Quantise ``onnx_path`` to INT8 and write ``out_dir``/model.xml, model.bin and calibration.json
    (the sample's size, seed and image paths). The folder appears complete or not at all."""
    import nncf
    import openvino as ov
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    t0 = time.perf_counter()
    images, paths = calibration_images(train_csv, size, seed, height, width, workers)
    log.info("calibration: %d training images (seed %d) from %s", len(images), seed, train_csv)
    model = ov.convert_model(str(onnx_path))
    model.reshape([1, 3, height, width])
    dataset = nncf.Dataset(list(images), lambda img: img[None])
    quantized = nncf.quantize(
        model,
        dataset,
        subset_size=len(images),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        fast_bias_correction=True,
        advanced_parameters=nncf.AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX),
    )
    quantized.reshape([-1, 3, height, width])  # any batch, as the ONNX export
    summary = {
        "calibration_images": len(images),
        "calibration_source": str(train_csv),
        "calibration_seed": seed,
        "preset": "PERFORMANCE",
        "fast_bias_correction": True,
        "activation_ranges": "min-max",
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
