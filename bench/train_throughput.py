"""Training throughput of the AlignedReID++ step on CPU: the previous configuration beside the new
default, in one run, each as a fraction of this machine's float32 GEMM rate measured in the same run.

  python bench/train_throughput.py --depth 50 --height 256 --width 128 --batch 32 --steps 3

Configurations (each in its own process, since the execution mode and the oneDNN ISA cap are
per process):
  old      PyNative, im2col convolution (the CPU default before the architecture pass)
  jit-fn   graph mode, native convolution, the step compiled from a plain function with ms.jit
  jit-fn-nopipe  as jit-fn, with MindSpore's graph pipeline off (MS_DEV_RUNTIME_CONF=graph_pipeline:False):
           the pipeline that ms.jit function graphs run under, and Cell graphs do not, is what makes
           jit-fn ~2x slower than cell on CPU (docs/architecture.md §7)
  cell     graph mode, native convolution, the step as an nn.Cell (the default now)
Model FLOPs: standard ResNet multiply-accumulate counts at 224x224 scaled to the input size, x2 for
FLOPs, x3 for a training step (forward + backward). The step is timed on in-memory batches after
one warm-up (compile) step; the loss of the first timed step is printed to show the three agree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gemm_rate, print_table  # noqa: E402

GMACS_224 = {18: 1.82, 34: 3.67, 50: 4.11}
CONFIGS = {
    "old": ("pynative", "unfold", "cell"),
    "jit-fn": ("graph", "native", "function"),
    "jit-fn-nopipe": ("graph", "native", "function"),
    "cell": ("graph", "native", "cell"),
}
CONFIG_ENV = {"jit-fn-nopipe": {"MS_DEV_RUNTIME_CONF": "graph_pipeline:False"}}


def run_one(args) -> dict:
    """Time one configuration in this process."""
    import mindspore as ms
    import numpy as np

    import alignedreid  # noqa: F401  (applies the CPU runtime defaults before MindSpore loads)
    from alignedreid.foundation.config import resolve
    from alignedreid.model.network import build_model
    from alignedreid.training.losses import AlignedLoss
    from alignedreid.training.step import DistInfo, build_optimizer, make_step

    execution, conv, style = CONFIGS[args.one]
    ms.set_context(mode=ms.GRAPH_MODE if execution == "graph" else ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    if args.op_threads:  # MindSpore's CPU kernel thread pool (its default is 25 threads)
        ms.device_context.cpu.op_tuning.threads_num(args.op_threads)
    ms.set_seed(1)
    classes = args.batch // args.instances
    net = build_model(classes, args.depth, 128, conv_impl=conv)
    net.set_train(True)
    opt = build_optimizer(net, resolve({"train": {"lr_max": 0.01}})["train"], np.full(1000, 0.01, np.float32))
    recipe = resolve({})["train"]
    loss_fn = AlignedLoss(classes, recipe["margin"], recipe["label_smooth_epsilon"], recipe["label_smooth"])
    if style == "cell":
        step = make_step(net, loss_fn, opt, DistInfo())
    else:

        def forward(images, labels):
            logits, feat, local = net(images)
            total, *_ = loss_fn(logits, feat, local, labels)
            return total

        grad_fn = ms.value_and_grad(forward, None, opt.parameters)

        @ms.jit
        def step(images, labels):
            total, grads = grad_fn(images, labels)
            opt(grads)
            return (total,)

    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((args.batch, 3, args.height, args.width)).astype(np.float32))
    y = ms.Tensor(np.repeat(np.arange(classes), args.instances).astype(np.int32))
    t = time.perf_counter()
    first = float(step(x, y)[0].asnumpy())
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step(x, y)[0].asnumpy()
        times.append(time.perf_counter() - t)
    return {"step_s": float(np.median(times)), "first_step_s": compile_s, "first_loss": first, "isa": os.environ.get("ONEDNN_MAX_CPU_ISA")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--configs", default="old,jit-fn,jit-fn-nopipe,cell", help="comma-separated subset of " + ", ".join(CONFIGS))
    ap.add_argument("--op-threads", type=int, default=0, help="MindSpore CPU kernel threads (0 = its default)")
    ap.add_argument("--one", choices=list(CONFIGS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args)), flush=True)
        return
    flops = GMACS_224[args.depth] * 1e9 * 2 * 3 * (args.height * args.width) / (224 * 224) * args.batch
    results = {}
    for name in args.configs.split(","):
        argv = (
            [sys.executable, __file__, "--one", name]
            + [f"--{k}={getattr(args, k)}" for k in ("depth", "height", "width", "batch", "instances", "steps")]
            + [f"--op-threads={args.op_threads}"]
        )
        out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **CONFIG_ENV.get(name, {})})
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode or not lines:
            sys.exit(f"configuration {name} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
        results[name] = json.loads(lines[-1][7:])
    rate = gemm_rate()  # after the runs, on the same (now idle) cores
    base = results.get("old", {}).get("step_s")
    rows = []
    for name, r in results.items():
        ex, conv, style = CONFIGS[name]
        rows.append(
            [
                name,
                ex,
                conv,
                style,
                f"{r['first_step_s']:.1f}",
                f"{r['step_s']:.2f}",
                f"{args.batch / r['step_s']:.2f}",
                f"{100 * flops / r['step_s'] / rate:.1f}",
                f"{base / r['step_s']:.2f}x" if base else "-",
                f"{r['first_loss']:.4f}",
            ]
        )
    print_table(
        f"ResNet-{args.depth} {args.height}x{args.width}, batch {args.batch}, CPU; GEMM rate {rate / 1e9:.0f} GFLOP/s; "
        f"ONEDNN_MAX_CPU_ISA={results[next(iter(results))]['isa']}",
        ["config", "mode", "conv", "step", "first step s", "s/step", "images/s", "% of GEMM", "speed-up", "loss step 1"],
        rows,
    )


if __name__ == "__main__":
    main()
