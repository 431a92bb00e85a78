"""AlignedReID++ losses in MindSpore ops (graph-mode friendly).

- label-smoothed cross-entropy (epsilon 0.1)
- batch-hard triplet on Euclidean distances of the raw global feature (margin 0.3)
- local triplet on the same mined pairs with the DMLI distance (not divided by path length)
"""

from __future__ import annotations

import mindspore as ms
from mindspore import nn, ops


class CrossEntropyLabelSmooth(nn.Cell):
    def __init__(self, num_classes: int, epsilon: float):
        super().__init__()
        self.num_classes, self.epsilon = num_classes, epsilon
        self.log_softmax = nn.LogSoftmax(axis=1)

    def construct(self, logits, labels):
        logp = self.log_softmax(logits)
        onehot = ops.one_hot(labels, self.num_classes, ms.Tensor(1.0, ms.float32), ms.Tensor(0.0, ms.float32))
        target = (1.0 - self.epsilon) * onehot + self.epsilon / self.num_classes
        return (-target * logp).sum(axis=1).mean()


def euclidean_dist(x, y):
    """[M, d], [N, d] -> [M, N] Euclidean distances (clamped at 1e-12 before the root)."""
    xx = (x * x).sum(axis=1, keepdims=True)
    yy = (y * y).sum(axis=1, keepdims=True).T
    d = xx + yy - 2.0 * ops.matmul(x, y.T)
    return ops.sqrt(ops.clamp(d, min=1e-12))


def hard_example_mining(dist, labels):
    """Hardest positive (largest distance, same label) and hardest negative (smallest
    distance, other label) per anchor: distances and indices."""
    same = labels.expand_dims(1) == labels.expand_dims(0)
    big = ops.stop_gradient(dist.max()) + 1.0
    pos_masked = ops.where(same, dist, ops.zeros_like(dist) - 1.0)
    neg_masked = ops.where(same, dist + big, dist)
    p_idx = pos_masked.argmax(axis=1)
    n_idx = neg_masked.argmin(axis=1)
    dist_ap = ops.gather_elements(dist, 1, p_idx.expand_dims(1)).squeeze(1)
    dist_an = ops.gather_elements(dist, 1, n_idx.expand_dims(1)).squeeze(1)
    return dist_ap, dist_an, ops.stop_gradient(p_idx), ops.stop_gradient(n_idx)


def shortest_path(d, m: int, n: int):
    """d [N, m, n] -> [N]: cheapest down/right path from (0, 0) to (m-1, n-1)."""
    rows = []
    for i in range(m):
        row = []
        for j in range(n):
            v = d[:, i, j]
            if i == 0 and j == 0:
                row.append(v)
            elif i == 0:
                row.append(row[j - 1] + v)
            elif j == 0:
                row.append(rows[i - 1][0] + v)
            else:
                row.append(ops.minimum(rows[i - 1][j], row[j - 1]) + v)
        rows.append(row)
    return rows[m - 1][n - 1]


def paired_local_dist(x, y):
    """x, y [N, m, d] (paired rows) -> [N] DMLI distance of each pair."""
    m, n = x.shape[1], y.shape[1]
    xx = (x * x).sum(axis=2, keepdims=True)  # [N, m, 1]
    yy = (y * y).sum(axis=2, keepdims=True).transpose(0, 2, 1)  # [N, 1, n]
    d = xx + yy - 2.0 * ops.bmm(x, y.transpose(0, 2, 1))
    d = ops.sqrt(ops.clamp(d, min=1e-12))
    e = ops.exp(d)
    d = (e - 1.0) / (e + 1.0)
    return shortest_path(d, m, n)


class AlignedLoss(nn.Cell):
    """Total loss = ID (label smoothed) + global triplet + local triplet; returns the parts too."""

    def __init__(self, num_classes: int, margin: float, epsilon: float, label_smooth: bool):
        super().__init__()
        self.ce = CrossEntropyLabelSmooth(num_classes, epsilon if label_smooth else 0.0)
        self.margin = margin
        self.relu = nn.ReLU()

    def construct(self, logits, feat, local, labels):
        id_loss = self.ce(logits, labels)
        dist = euclidean_dist(feat, feat)
        dist_ap, dist_an, p_idx, n_idx = hard_example_mining(dist, labels)
        g_loss = self.relu(dist_ap - dist_an + self.margin).mean()
        l_ap = paired_local_dist(local, ops.gather(local, p_idx, 0))
        l_an = paired_local_dist(local, ops.gather(local, n_idx, 0))
        l_loss = self.relu(l_ap - l_an + self.margin).mean()
        return id_loss + g_loss + l_loss, id_loss, g_loss, l_loss
