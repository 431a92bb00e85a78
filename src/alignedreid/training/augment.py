"""Random erasing (Zhong et al.) of a batch, in MindSpore ops inside the training graph.

Per image with probability ``p``: a rectangle of area fraction U(area_min, area_max) and aspect
ratio log-uniform in [ratio, 1/ratio] at a uniform position is filled with ``fill`` (per
channel). A rectangle larger than the image is clipped to it (the reference re-draws up to 100
times instead). Random numbers come from MindSpore's seeded generator, so runs repeat.
"""

from __future__ import annotations

import math

import mindspore as ms
from mindspore import nn, ops

# what an erased rectangle is filled with, per channel (the recipe's CIFAR-10 channel means, 0-1)
ERASE_FILL = (0.4914, 0.4822, 0.4465)


class RandomErasing(nn.Cell):
    def __init__(self, p: float = 0.5, area=(0.02, 0.4), ratio: float = 0.3, fill=ERASE_FILL):
        super().__init__()
        self.p, self.a0, self.a1 = p, area[0], area[1]
        self.log_r0, self.log_r1 = math.log(ratio), math.log(1.0 / ratio)
        self.fill = ms.Tensor(fill, ms.float32).reshape(1, 3, 1, 1)

    def construct(self, x):
        n, _, h, w = x.shape
        r = ops.rand((n, 5), dtype=ms.float32)
        area = (self.a0 + (self.a1 - self.a0) * r[:, 0]) * (h * w)
        aspect = ops.exp(self.log_r0 + (self.log_r1 - self.log_r0) * r[:, 1])
        eh = ops.clamp(ops.round(ops.sqrt(area * aspect)), 1.0, float(h))
        ew = ops.clamp(ops.round(ops.sqrt(area / aspect)), 1.0, float(w))
        top = ops.floor(r[:, 2] * (h - eh + 1.0))
        left = ops.floor(r[:, 3] * (w - ew + 1.0))
        apply = r[:, 4] < self.p
        ys = ops.arange(h, dtype=ms.float32).reshape(1, h, 1)
        xs = ops.arange(w, dtype=ms.float32).reshape(1, 1, w)
        t, l = top.reshape(n, 1, 1), left.reshape(n, 1, 1)
        inside = (ys >= t) & (ys < t + eh.reshape(n, 1, 1)) & (xs >= l) & (xs < l + ew.reshape(n, 1, 1))
        mask = (inside & apply.reshape(n, 1, 1)).expand_dims(1)
        return ops.where(mask, self.fill.broadcast_to(x.shape), x)
