"""Training throughput: images/s and model FLOP/s of the AlignedReID++ training step, as a
fraction of this machine's float32 GEMM rate measured in the same run, and the cost of the real
input pipeline (decode + augment + P x K sampler) against in-memory batches.

  python bench/train_throughput.py --depth 50 --height 256 --width 128 --batch 32 --steps 3
Model FLOPs use the standard ResNet multiply-accumulate counts at 224x224 scaled to the input
size, x2 for FLOPs, x3 for a training step (forward + backward).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import mindspore as ms
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gemm_rate, print_table  # noqa: E402

from alignedreid.data.prepare import prepare_dataset  # noqa: E402
from alignedreid.training.losses import AlignedLoss  # noqa: E402
from alignedreid.model import build_model  # noqa: E402
from alignedreid.data.loader import train_dataset  # noqa: E402
from alignedreid.train import DistInfo, build_optimizer, make_step  # noqa: E402

GMACS_224 = {18: 1.82, 34: 3.67, 50: 4.11}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--execution", choices=["pynative", "graph"], default="pynative")
    args = ap.parse_args()
    rate = gemm_rate()
    graph = args.execution == "graph"
    ms.set_context(mode=ms.GRAPH_MODE if graph else ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    with tempfile.TemporaryDirectory() as d:
        ids = max(2 * args.batch // args.instances, 8)
        prepare_dataset({"source": "synthetic", "synthetic": {"train_ids": ids, "test_ids": 2, "images_per_id": args.instances + 2,
                                                               "distractors": 0, "junk": 0}}, Path(d), work_dir=Path(d))
        manifest = pd.read_csv(Path(d) / "train.csv")
        data, _, num_classes, steps = train_dataset(manifest, args.height, args.width, args.batch, args.instances, {}, workers=2)
        net = build_model(num_classes, args.depth, conv_impl="unfold")
        net.set_train(True)
        opt = build_optimizer(net, {"lr_max": 0.01}, np.full(1000, 0.01, np.float32))
        step = make_step(net, AlignedLoss(num_classes), opt, DistInfo(), None, None, graph)
        rng = np.random.default_rng(0)
        x = ms.Tensor(rng.standard_normal((args.batch, 3, args.height, args.width)).astype(np.float32))
        y = ms.Tensor(np.repeat(np.arange(args.batch // args.instances), args.instances).astype(np.int32))
        step(x, y)[0].asnumpy()  # warm-up / compile
        t = time.perf_counter()
        for _ in range(args.steps):
            step(x, y)[0].asnumpy()
        mem_s = (time.perf_counter() - t) / args.steps
        it = data.create_tuple_iterator(num_epochs=-1)
        t = time.perf_counter()
        for i, (images, labels) in enumerate(it):
            step(images, labels)[0].asnumpy()
            if i + 1 >= args.steps:
                break
        real_s = (time.perf_counter() - t) / args.steps
    flops = GMACS_224[args.depth] * 1e9 * 2 * 3 * (args.height * args.width) / (224 * 224) * args.batch
    rows = [["in-memory batches", f"{mem_s:.2f}", f"{args.batch / mem_s:.2f}", f"{flops / mem_s / 1e9:.1f}", f"{100 * flops / mem_s / rate:.1f}"],
            ["real input pipeline", f"{real_s:.2f}", f"{args.batch / real_s:.2f}", f"{flops / real_s / 1e9:.1f}", f"{100 * flops / real_s / rate:.1f}"]]
    print_table(f"ResNet-{args.depth} {args.height}x{args.width}, batch {args.batch}, {args.execution}; GEMM rate {rate / 1e9:.0f} GFLOP/s; "
                f"pipeline overhead {100 * (real_s / mem_s - 1):.1f} %",
                ["input", "s/step", "images/s", "model GFLOP/s", "% of GEMM rate"], rows)


if __name__ == "__main__":
    main()
