"""Per-step learning rates: linear warm-up from lr_init to lr_max, then cosine down to lr_end."""

from __future__ import annotations

import math

import numpy as np


def warmup_cosine(lr_init: float, lr_max: float, lr_end: float, warmup_epochs: float, total_epochs: int, steps_per_epoch: int) -> np.ndarray:
    total = int(total_epochs * steps_per_epoch)
    warm = int(warmup_epochs * steps_per_epoch)
    lrs = np.empty(total, dtype=np.float32)
    for i in range(total):
        if i < warm:
            lrs[i] = lr_init + (lr_max - lr_init) * (i + 1) / warm
        else:
            t = (i - warm) / max(1, total - warm)
            lrs[i] = lr_end + (lr_max - lr_end) * 0.5 * (1.0 + math.cos(math.pi * t))
    return lrs
