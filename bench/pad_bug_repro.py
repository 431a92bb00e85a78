"""Minimal reproducer of the MindSpore 2.10 CPU bug the project works around (docs/architecture.md §7).

``ops.pad`` with asymmetric zero padding, differentiated in graph mode, compiles its gradient to a
CPU ``PadV3`` with negative pads (a crop). That kernel keeps the cropped shape from its previous
launch and crops again on every call: the gradient is wrong from the second call on, and after
about ten calls the extent goes negative and the kernel never returns. It affected the im2col
convolution of stride-2 layers (training on corrupted gradients from step 2, then a stall).

  python bench/pad_bug_repro.py [--calls 12] [--timeout 60]

Prints, per call, whether the compiled gradient of ``ops.pad`` still equals the exact one, and the
same for ``alignedreid.model.network.zero_pad`` (the workaround). Each call runs under a time limit in a
child process, so a hang is reported instead of blocking. When MindSpore fixes the kernel, the
``ops.pad`` column reads "ok" on every call and the workaround can go.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def child(kind: str, calls: int) -> None:
    import mindspore as ms
    import numpy as np
    from mindspore import ops

    import alignedreid  # noqa: F401
    from alignedreid.model.network import zero_pad

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    x = ms.Tensor(np.arange(2 * 3 * 6 * 5, dtype=np.float32).reshape(2, 3, 6, 5) / 10)
    w = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float32))

    def loss(t):
        padded = ops.pad(t, (0, 1, 0, 1)) if kind == "ops.pad" else zero_pad(t, 0, 1, 0, 1)
        return (padded * w).sum()

    grad = ms.jit(ms.grad(loss))
    want = w.asnumpy()[:, :, :6, :5]  # d/dx sum(pad(x) * w) is the crop of w
    for i in range(calls):
        ok = bool(np.allclose(grad(x).asnumpy(), want))
        print(json.dumps({"call": i, "ok": ok}), flush=True)


def run(kind: str, calls: int, timeout: float) -> list[str]:
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--calls", str(calls)], capture_output=True, text=True, timeout=timeout
        ).stdout
        status = "done"
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        status = "hung"
    results = [("ok" if json.loads(ln)["ok"] else "WRONG") for ln in out.splitlines() if ln.startswith("{")]
    return results + ([f"HUNG (> {timeout:.0f} s)"] if status == "hung" else [])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=12)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.calls)
        return
    cols = {k: run(k, args.calls, args.timeout) for k in ("ops.pad", "zero_pad")}
    print("| call | ops.pad gradient | zero_pad gradient |\n|---|---|---|")
    for i in range(max(len(c) for c in cols.values())):
        cells = [c[i] if i < len(c) else "-" for c in cols.values()]
        print(f"| {i} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
