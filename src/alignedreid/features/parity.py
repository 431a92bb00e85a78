"""Agreement of the C++ and the Python features: max |C++ - Python| over the values evaluation uses.

Evaluation sees the global feature only L2-normalised (its distance is that of unit vectors) and
the stripes are unit length already, so parity compares the L2-normalised global features and the
stripes against the tolerance. The raw global feature is not normalised in the network and reaches
hundreds for an untrained ResNet-50, where float32 itself cannot hold 1e-4 (one ulp at 512 is 6e-5):
its absolute and row-relative differences are reported beside, for information."""

from __future__ import annotations

import numpy as np

from ..evaluation.distance import l2_normalise
from ..foundation.contracts import PARITY_TOLERANCE
from ..foundation.errors import PipelineError
from .files import load_features


class ParityError(PipelineError):
    """The C++ program's features differ from MindSpore's by more than the tolerance."""


def parity(cpp_npz: list, py_npz: list, tolerance: float = PARITY_TOLERANCE) -> dict:
    """Max abs differences of the global and local features over every pair of files. The Python
    file may hold a sample of the rows (its ``row`` array); the C++ rows are matched to it."""
    out = {"global_max_abs_diff": 0.0, "local_max_abs_diff": 0.0, "global_raw_max_abs_diff": 0.0, "global_raw_max_rel_diff": 0.0, "rows_compared": 0}
    for c, p in zip(cpp_npz, py_npz):
        a, b = load_features(c), load_features(p)
        if not a.complete:
            raise PipelineError(f"{c}: the C++ features must cover every manifest row")
        if b.complete and len(b) != len(a):
            raise PipelineError(f"{c} and {p} have different shapes: {len(a)} and {len(b)} rows (and {p} is no sample)")
        if len(b) and b.row.max() >= len(a):
            raise PipelineError(f"{p}: rows up to {b.row.max()} but {c} has {len(a)} rows; were they made from the same manifest?")
        a = type(a)(a.global_[b.row], a.local[b.row], a.pid[b.row], a.camid[b.row], a.path[b.row], b.row, b.sampled)
        if not np.array_equal(a.path, b.path):
            raise PipelineError(f"{c} and {p} list other images for the same rows; were they made from the same manifest?")
        out["rows_compared"] += len(b)
        if a.global_.shape != b.global_.shape or a.local.shape != b.local.shape:
            raise PipelineError(f"{c} and {p} have different shapes: {a.global_.shape}/{a.local.shape} vs {b.global_.shape}/{b.local.shape}")
        if len(b):
            raw = np.abs(a.global_ - b.global_)
            norm = np.maximum(np.linalg.norm(b.global_, axis=1, keepdims=True), 1e-12)
            out["global_raw_max_abs_diff"] = max(out["global_raw_max_abs_diff"], float(raw.max()))
            out["global_raw_max_rel_diff"] = max(out["global_raw_max_rel_diff"], float((raw / norm).max()))
            na, nb = l2_normalise(a.global_), l2_normalise(b.global_)
            diff = np.abs(na - nb)
            out["global_min_cosine"] = min(out.get("global_min_cosine", 1.0), float((na * nb).sum(axis=1).min()))
            out["global_max_abs_diff"] = max(out["global_max_abs_diff"], float(diff.max()))
            out["local_max_abs_diff"] = max(out["local_max_abs_diff"], float(np.abs(a.local - b.local).max()))
            # stripes are unit vectors: their cosine is the dot product (zero stripes of the reference left out).
            # The bound is per image, the mean over its stripes (the DMLI distance sums over stripes): the
            # worst single stripe of thousands is an extreme value that grows stricter with the sample size
            # alone; it is kept for information (stripe_min_cosine)
            cos = (a.local * b.local).sum(axis=2)
            valid = np.linalg.norm(b.local, axis=2) > 0.5
            has = valid.any(axis=1)
            per_image = (cos * valid).sum(axis=1)[has] / valid.sum(axis=1)[has]
            if per_image.size:
                out["local_min_cosine"] = min(out.get("local_min_cosine", 1.0), float(per_image.min()))
                out["stripe_min_cosine"] = min(out.get("stripe_min_cosine", 1.0), float(cos[valid].min()))
    out["max_abs_diff"] = max(out["global_max_abs_diff"], out["local_max_abs_diff"])
    out["tolerance"] = tolerance
    out["ok"] = out["max_abs_diff"] <= tolerance
    return out


def check_low_precision(result: dict, precision: str, min_cosine: float, files) -> None:
    """Hold int8/bf16 features to the stated bound: finite (the feature files refuse anything else) and
    the worst global cosine and the worst image's mean stripe cosine to the float32 reference at least
    ``min_cosine`` (infer.min_cosine)."""
    worst = {k: result.get(f"{k}_min_cosine", 1.0) for k in ("global", "local")}
    low = {k: v for k, v in worst.items() if not v >= min_cosine}
    if low:
        raise ParityError(
            f"infer.precision {precision}: the features of {', '.join(map(str, files))} are further from the float32 reference than "
            f"infer.min_cosine {min_cosine:g} allows: worst cosine "
            + ", ".join(f"{k} {v:.4f}" for k, v in worst.items())
            + f" (local: an image's mean over its stripes; worst single stripe {result.get('stripe_min_cosine', 1.0):.4f})"
            + f" over {result['rows_compared']} reference images"
        )


def check_parity(result: dict) -> None:
    """Raise ParityError (naming both numbers) when ``result`` is beyond its tolerance."""
    if not result["ok"]:
        raise ParityError(
            f"C++ and Python features differ by {result['max_abs_diff']:.3e} (global "
            f"{result['global_max_abs_diff']:.3e}, local {result['local_max_abs_diff']:.3e}), above the "
            f"tolerance {result['tolerance']:g}: the exported model or the C++ program does not compute "
            "what the trained network computes"
        )
