"""P x K identity sampler: each epoch, every identity (of this rank's share) contributes K
image indices, identities in random order; consecutive chunks of the sequence form batches.

With several ranks, identities are split into disjoint shares (as the model-zoo 8-card run),
so every rank sees different people and the same number of steps.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


class IdentitySampler:
    def __init__(self, pids, num_instances: int, seed: int, rank: int = 0, world_size: int = 1):
        if num_instances < 1:
            raise ValueError(f"train.num_instances must be >= 1, got {num_instances}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        by_pid = defaultdict(list)
        for i, p in enumerate(np.asarray(pids).tolist()):
            by_pid[p].append(i)
        all_pids = sorted(by_pid)
        if len(all_pids) < world_size:
            raise ValueError(f"{len(all_pids)} identities cannot be split over {world_size} ranks")
        share = np.array_split(np.array(all_pids), world_size)[rank]
        self.index = {int(p): np.array(by_pid[p]) for p in share}
        self.pids = sorted(self.index)
        self.k, self.seed, self.rank = num_instances, seed, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pids) * self.k

    def indices(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.rank, epoch])
        out = []
        for p in rng.permutation(self.pids):
            idx = self.index[int(p)]
            out.append(rng.choice(idx, size=self.k, replace=len(idx) < self.k))
        return np.concatenate(out)

    def __iter__(self):
        seq = self.indices(self.epoch)
        self.epoch += 1
        return iter(seq.tolist())
