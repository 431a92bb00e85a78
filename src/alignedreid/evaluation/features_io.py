"""Feature files (docs/architecture.md §3): global [N, 2048], local [N, S, D], pid, camid, path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..io_utils import atomic_path

REQUIRED = {"global": 2, "local": 3, "pid": 1, "camid": 1, "path": 1}


@dataclass
class FeatureSet:
    global_: np.ndarray
    local: np.ndarray
    pid: np.ndarray
    camid: np.ndarray
    path: np.ndarray

    def __len__(self):
        return len(self.pid)


def load_features(path: str | os.PathLike) -> FeatureSet:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: feature file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise PipelineError(f"{path}: not a readable .npz feature file ({e})") from e
    for key, ndim in REQUIRED.items():
        if key not in arrays:
            raise PipelineError(f"{path}: missing array {key!r}; expected {sorted(REQUIRED)}")
        if arrays[key].ndim != ndim:
            raise PipelineError(f"{path}: array {key!r} has {arrays[key].ndim} dimensions, expected {ndim}")
    n = len(arrays["pid"])
    for key in REQUIRED:
        if len(arrays[key]) != n:
            raise PipelineError(f"{path}: array {key!r} has {len(arrays[key])} rows, 'pid' has {n}")
    return FeatureSet(
        arrays["global"].astype(np.float32, copy=False),
        arrays["local"].astype(np.float32, copy=False),
        arrays["pid"].astype(np.int64),
        arrays["camid"].astype(np.int64),
        arrays["path"].astype(str),
    )


def save_features(path: str | os.PathLike, global_, local, pid, camid, paths) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                **{
                    "global": np.asarray(global_, np.float32),
                    "local": np.asarray(local, np.float32),
                    "pid": np.asarray(pid, np.int64),
                    "camid": np.asarray(camid, np.int64),
                    "path": np.asarray(paths, dtype=str),
                },
            )
