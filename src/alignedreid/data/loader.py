"""The MindSpore input pipelines (mindspore.dataset) over the manifests (train: P x K sampler + augmentation;
eval: resize + normalise). Images are decoded and transformed by MindSpore's C++ ops so that
runs are deterministic for a seed (mindspore.dataset.config.set_seed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mindspore import dataset as ds
from mindspore.dataset import transforms, vision

from ..foundation.errors import DatasetError
from .images import UnusableImage, model_bytes
from .sampler import IdentitySampler

IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]  # 123.675, 116.28, 103.53
IMAGENET_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]  # 58.395, 57.12, 57.375


class ManifestImages:
    """Random-access source: (encoded image bytes, label) for each manifest row."""

    def __init__(self, paths, labels):
        self.paths = [str(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int32)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        # every stage decodes through the one image contract (data/images.py): formats MindSpore's
        # Decode cannot read arrive normalised to PNG bytes, in memory
        try:
            data = model_bytes(self.paths[i])
        except UnusableImage as e:
            raise DatasetError(f"cannot use image {e}") from e
        except OSError as e:
            raise DatasetError(f"{self.paths[i]}: cannot read image ({e})") from e
        return np.frombuffer(data, dtype=np.uint8), self.labels[i]


def relabel(pids) -> tuple[np.ndarray, dict[int, int]]:
    """Original person ids -> 0..K-1 (sorted order)."""
    uniq = sorted(set(int(p) for p in pids))
    mapping = {p: i for i, p in enumerate(uniq)}
    return np.array([mapping[int(p)] for p in pids], dtype=np.int32), mapping


def train_transforms(height: int, width: int, aug: dict) -> list:
    ops = [vision.Decode()]
    if aug["translate"]:
        big = (int(round(height * 1.125)), int(round(width * 1.125)))
        ops.append(
            transforms.RandomChoice([vision.Resize((height, width)), transforms.Compose([vision.Resize(big), vision.RandomCrop((height, width))])])
        )
    else:
        ops.append(vision.Resize((height, width)))
    if aug["flip"]:
        ops.append(vision.RandomHorizontalFlip(0.5))
    # random erasing runs on the batch inside the training graph (alignedreid.training.augment), as
    # MindSpore's RandomErasing only fills integer values
    return ops + [vision.Normalize(IMAGENET_MEAN, IMAGENET_STD), vision.HWC2CHW()]


def eval_transforms(height: int, width: int, normalise: bool = True) -> list:
    """Decode, bilinear resize (uint8 HWC out), then ImageNet normalisation and CHW. Without
    ``normalise`` the pipeline stops at the resized uint8 pixels (the C++ program's packed input)."""
    resized = [vision.Decode(), vision.Resize((height, width))]
    return resized + ([vision.Normalize(IMAGENET_MEAN, IMAGENET_STD), vision.HWC2CHW()] if normalise else [])


def train_dataset(
    manifest: pd.DataFrame,
    height: int,
    width: int,
    batch_size: int,
    num_instances: int,
    aug: dict,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    workers: int = 2,
):
    """Returns (dataset, sampler, num_classes, steps_per_epoch)."""
    labels, mapping = relabel(manifest["pid"])
    sampler = IdentitySampler(manifest["pid"].to_numpy(), num_instances, seed, rank, world_size)
    steps = len(sampler) // batch_size
    if steps < 1:
        raise DatasetError(
            f"train: {len(sampler)} samples per epoch on this rank (identities x num_instances) are fewer than one batch of {batch_size}"
        )
    if batch_size % num_instances:
        raise DatasetError(f"train.batch_size ({batch_size}) must be a multiple of train.num_instances ({num_instances})")
    source = ManifestImages(manifest["path"], labels)
    data = ds.GeneratorDataset(source, column_names=["image", "label"], sampler=sampler, python_multiprocessing=False)
    data = data.map(operations=train_transforms(height, width, aug), input_columns="image", num_parallel_workers=workers)
    data = data.batch(batch_size, drop_remainder=True)
    return data, sampler, len(mapping), steps


def eval_dataset(manifest: pd.DataFrame, height: int, width: int, batch_size: int, workers: int = 2, normalise: bool = True):
    source = ManifestImages(manifest["path"], manifest["pid"].to_numpy())
    data = ds.GeneratorDataset(source, column_names=["image", "label"], shuffle=False, python_multiprocessing=False)
    data = data.map(operations=eval_transforms(height, width, normalise), input_columns="image", num_parallel_workers=workers)
    return data.batch(batch_size, drop_remainder=False)
