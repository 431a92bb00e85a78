"""Global-feature distances as the recipe evaluates them."""

from __future__ import annotations

import numpy as np


def l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def global_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of L2-normalised rows (range [0, 4]), float32."""
    a, b = l2_normalise(a.astype(np.float32)), l2_normalise(b.astype(np.float32))
    d = 2.0 - 2.0 * (a @ b.T)
    return np.clip(d, 0.0, 4.0, out=d)


def unit_stripes_(local: np.ndarray) -> np.ndarray:
    """Scale every stripe of ``local`` [N, S, C] to unit length, in place (returned). The model's
    stripes already are (up to rounding); after test-time flip they are the mean of two unit
    vectors, and DMLI is defined on unit stripes."""
    norms = np.linalg.norm(local, axis=2, keepdims=True)
    local /= np.maximum(norms, 1e-12)
    return local
