"""Files exchanged with the C++ program (docs/architecture.md §3): preprocessed inputs and its raw outputs.

Inputs: ``{index:06d}.bin`` float32 [3, H, W] per manifest row (the same decode, resize and
ImageNet normalisation as MindSpore Python inference, so both paths see identical tensors).
Outputs: ``{index:06d}_0.bin`` global feature [C], ``{index:06d}_1.bin`` stripes [C, S].
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data.loader import eval_dataset
from ..data.market import read_manifest
from ..errors import PipelineError
from ..evaluation.features_io import save_features
from ..io_utils import atomic_directory

log = logging.getLogger(__name__)


def preprocess(manifest_csv, out_dir, height: int, width: int, workers: int) -> int:
    df = read_manifest(manifest_csv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = eval_dataset(df, height, width, batch_size=64, workers=workers)
    i = 0
    for images, _ in tqdm(
        data.create_tuple_iterator(num_epochs=1, output_numpy=True),
        total=data.get_dataset_size(),
        desc=f"preprocess {Path(manifest_csv).stem}",
        mininterval=2,
    ):
        for img in images:
            np.ascontiguousarray(img, dtype=np.float32).tofile(out_dir / f"{i:06d}.bin")
            i += 1
    if i != len(df):
        raise PipelineError(f"{manifest_csv}: wrote {i} inputs for {len(df)} manifest rows")
    return i


def collect_cpp_outputs(manifest_csv, output_dir, out_npz) -> dict:
    df = read_manifest(manifest_csv)
    output_dir = Path(output_dir)
    glob_, loc = [], []
    for i in range(len(df)):
        g_path, l_path = output_dir / f"{i:06d}_0.bin", output_dir / f"{i:06d}_1.bin"
        if not g_path.is_file() or not l_path.is_file():
            raise PipelineError(f"{output_dir}: missing C++ output for row {i} ({df.path.iloc[i]}); expected {g_path.name} and {l_path.name}")
        g = np.fromfile(g_path, dtype=np.float32)
        l = np.fromfile(l_path, dtype=np.float32)
        if l.size % g.size:
            raise PipelineError(f"{l_path}: {l.size} values are not a multiple of the global feature size {g.size}")
        glob_.append(g)
        loc.append(l.reshape(g.size, -1).T)
    save_features(out_npz, np.stack(glob_), np.stack(loc), df.pid, df.camid, df.path)
    return {"rows": len(df), "global_dim": int(glob_[0].size), "stripes": int(loc[0].shape[0])}


def run_cpp_program(exe, model, input_dir, output_dir, batch: int, height: int, width: int, device_id: int, threads: int) -> None:
    """Run the C++ program over ``input_dir``; its outputs land in a temporary folder that replaces
    ``output_dir`` only when the program succeeded, so a killed run leaves nothing a later step reads.
    The program's own output (with its images/s line) goes to this stage's log."""
    with atomic_directory(output_dir) as tmp:
        cmd = [
            str(exe),
            "--model",
            str(model),
            "--input_dir",
            str(input_dir),
            "--output_dir",
            str(tmp),
            "--batch",
            str(batch),
            "--height",
            str(height),
            "--width",
            str(width),
            "--device_id",
            str(device_id),
            "--threads",
            str(threads),
        ]
        log.info("running %s", " ".join(cmd))
        sys.stderr.flush()
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise PipelineError(f"{exe} exited with status {proc.returncode} on {input_dir}; its output is in this stage's log")
