"""Inference throughput: the C++ program (OpenVINO CPU backend on the ONNX export) against
MindSpore Python inference of the same checkpoint (before: PyNative + im2col; now: graph mode +
native convolutions), same batch sizes, same machine, same run.

  python bench/inference.py --ckpt results/train/model.ckpt --onnx results/export/model.onnx \
      --exe results/infer/bin/aligned_infer --depth 18 --height 128 --width 64
Prints a markdown table of images/s (model time only, input files already written).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mindspore as ms
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table  # noqa: E402

from alignedreid.model.checkpoint import load_trained  # noqa: E402


def python_rate(net, batch: int, h: int, w: int, n_images: int) -> float:
    x = ms.Tensor(np.random.default_rng(0).standard_normal((batch, 3, h, w)).astype(np.float32))
    net(x)[0].asnumpy()  # warm-up
    steps = max(1, n_images // batch)
    t = time.perf_counter()
    for _ in range(steps):
        net(x)[0].asnumpy()
    return steps * batch / (time.perf_counter() - t)


def cpp_rate(exe, onnx, batch: int, h: int, w: int, n_images: int, threads: int) -> float:
    """The C++ program on a packed uint8 input file (infer.io: packed), model time only."""
    with tempfile.TemporaryDirectory() as d:
        np.random.default_rng(0).integers(0, 256, (n_images, h, w, 3), dtype=np.uint8).tofile(Path(d) / "in.u8")
        cmd = [
            str(exe),
            "--model",
            str(onnx),
            "--input",
            str(Path(d) / "in.u8"),
            "--output_dir",
            str(Path(d) / "out"),
            "--batch",
            str(batch),
            "--height",
            str(h),
            "--width",
            str(w),
            "--threads",
            str(threads),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"images/s ([\d.]+)", out).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="results/train/model.ckpt")
    ap.add_argument("--onnx", default="results/export/model.onnx")
    ap.add_argument("--exe", default="results/infer/bin/aligned_infer")
    ap.add_argument("--depth", type=int, default=18)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    ms.set_device("CPU")
    rows = []
    # before: PyNative with the im2col convolution (the CPU default until the architecture pass);
    # now: graph mode with the native convolution (features_python and the quick evaluation)
    for mode, name, impl in ((ms.PYNATIVE_MODE, "pynative", "unfold"), (ms.GRAPH_MODE, "graph", "native")):
        ms.set_context(mode=mode)
        net = load_trained(args.ckpt, args.depth, impl)
        for batch in (1, 32):
            rows.append([f"MindSpore Python ({name}, {impl} conv)", batch, f"{python_rate(net, batch, args.height, args.width, args.images):.1f}"])
    for batch in (1, 32):
        rows.append(
            [
                "C++ aligned_infer (OpenVINO CPU)",
                batch,
                f"{cpp_rate(args.exe, args.onnx, batch, args.height, args.width, args.images, args.threads):.1f}",
            ]
        )
    print_table(f"Inference images/s, ResNet-{args.depth} at {args.height}x{args.width}", ["path", "batch", "images/s"], rows)


if __name__ == "__main__":
    main()
