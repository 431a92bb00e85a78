"""The learning-rate schedule (training/lr_schedule.py)."""

import numpy as np
import pytest

from alignedreid.training.lr_schedule import warmup_cosine


def test_warmup_cosine():
    lrs = warmup_cosine(0.0, 0.05, 3.5e-6, warmup_epochs=6, total_epochs=300, steps_per_epoch=93)
    assert len(lrs) == 300 * 93
    warm = 6 * 93
    assert lrs[0] == pytest.approx(0.05 / warm)
    assert lrs[warm - 1] == pytest.approx(0.05)
    assert np.all(np.diff(lrs[:warm]) > 0)
    assert np.all(np.diff(lrs[warm:]) <= 1e-9)
    assert lrs[-1] == pytest.approx(3.5e-6, rel=1e-3)
    mid = warm + (len(lrs) - warm) // 2
    assert lrs[mid] == pytest.approx((0.05 + 3.5e-6) / 2, rel=1e-2)
