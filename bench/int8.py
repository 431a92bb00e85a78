"""INT8 against fp32 (and bf16 where the CPU has it) in the pipeline's own C++ program: the same
images, the same model, one run; with the CPU's own ISA and, as an emulation of an AVX2-only CPU,
with oneDNN capped at AVX2 (labelled as such). Also the agreement of the int8 features with fp32.

  python bench/int8.py [--depth 50 --height 256 --width 128] [--images 256] [--ckpt model.ckpt]
      [--calibration 300] [--exe results/infer/bin/aligned_infer] [--work /tmp/int8-bench]

Without --ckpt the network is a ResNet-``depth`` AlignedReID++ with random weights whose BatchNorm
scales and shifts are randomised (a freshly initialised one has zero-gamma blocks, a degenerate
case for quantisation); with a trained checkpoint (the rehearsal's, the demo's) the numbers are the
real ones. Calibration and test images are synthetic (the generator of the demo).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table  # noqa: E402

import alignedreid  # noqa: E402,F401  (applies the MindSpore CPU defaults before MindSpore loads)
from alignedreid.foundation.cpu_runtime import program_env  # noqa: E402
from alignedreid.serving.program_settings import ProgramSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def cpu_flags() -> set[str]:
    try:
        return set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return set()


def make_checkpoint(path: Path, depth: int, seed: int = 0) -> None:
    import mindspore as ms

    from alignedreid.model.network import build_model

    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_seed(seed)
    net = build_model(751, depth, 128)
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        if p.name.endswith(".gamma"):
            p.set_data(ms.Tensor(rng.uniform(0.5, 1.5, p.shape).astype(np.float32)))
        elif p.name.endswith(".beta"):
            p.set_data(ms.Tensor(rng.normal(0, 0.1, p.shape).astype(np.float32)))
    ms.save_checkpoint(net, str(path))


def cpp_program(exe: str | None, work: Path) -> Path:
    """The C++ program: ``exe`` when given, else one built (once) into ``work``/build with this Python's OpenVINO."""
    path = Path(exe) if exe else work / "build" / "aligned_infer"
    if not path.is_file():
        subprocess.run(
            ["bash", str(REPO / "ascend310_infer/build.sh"), "cpu", str(path.parent)], check=True, env={**os.environ, "PYTHON": sys.executable}
        )
    return path


def isa_flags() -> str:
    """The vector-ISA flags of this CPU that decide the kernels (for the benches' titles)."""
    flags = cpu_flags()
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "avx_vnni") if f in flags) or "unknown"


def run_program(exe, model, inputs, out_dir, settings: ProgramSettings, threads: int, isa_cap: str | None) -> float:
    """The program's images/s with ``settings`` (a oneDNN ISA cap when given; the pipeline's run_cpp_program never caps)."""
    env = program_env()
    if isa_cap:
        env["ONEDNN_MAX_CPU_ISA"] = isa_cap
    cmd = [str(exe), "--model", str(model), "--input", str(inputs), "--output_dir", str(out_dir), *settings.arguments(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return float(re.search(r"images/s ([\d.]+)", proc.stdout).group(1))


def global_features(out_dir: Path, n: int) -> np.ndarray:
    g = np.fromfile(out_dir / "output_0.f32", np.float32).reshape(n, -1)
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--calibration", type=int, default=300)
    ap.add_argument("--ckpt", help="a trained checkpoint (default: random weights, randomised BatchNorm)")
    ap.add_argument("--exe", help="the built C++ program (default: build one into the work folder)")
    ap.add_argument("--work", default="/tmp/alignedreid-int8-bench")
    args = ap.parse_args()

    import pandas as pd

    from alignedreid.data.prepare import prepare_dataset
    from alignedreid.foundation.config import resolve
    from alignedreid.serving.cpp_program import preprocess
    from alignedreid.serving.cpp_run import cpu_has_bf16
    from alignedreid.serving.export import export_model
    from alignedreid.serving.quantize import quantize_model

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = Path(args.ckpt) if args.ckpt else work / f"random_r{args.depth}.ckpt"
    if not ckpt.is_file():
        make_checkpoint(ckpt, args.depth)
    export_model(
        ckpt, work, {"depth": args.depth, "height": args.height, "width": args.width}, {"batch_size": 1, "formats": ["MINDIR", "ONNX"]}, "CPU"
    )
    per_id = 8
    ids = max(4, -(-args.images // per_id))
    spec = {"seed": 11, "train_ids": max(8, -(-args.calibration // per_id)), "test_ids": ids, "images_per_id": per_id + 1}
    spec.update({"queries_per_id": 1, "distractors": 0, "junk": 0, "width": 64, "height": 128})
    data = work / "data"
    if not (data / "gallery.csv").is_file():
        prepare_dataset(resolve({"dataset": {"synthetic": spec}})["dataset"], data, work_dir=data, workers=2)
    gallery = pd.read_csv(data / "gallery.csv").head(args.images)
    gallery.to_csv(work / "test.csv", index=False)
    n = preprocess(work / "test.csv", work / "test.u8", args.height, args.width, workers=2, layout="packed")
    q = quantize_model(work / "model.onnx", data / "train.csv", work / "int8", args.height, args.width, args.calibration, 0)
    exe = cpp_program(args.exe, work)
    isa = isa_flags()
    precisions = ["fp32", "int8"] + (["bf16"] if cpu_has_bf16() else [])
    models = {"fp32": work / "model.onnx", "bf16": work / "model.onnx", "int8": work / "int8" / "model.xml"}
    rows, feats = [], {}
    for cap, label in ((None, "CPU's own"), ("AVX2", "capped at AVX2 (emulation of an AVX2-only CPU)")):
        base = None
        for prec in precisions:
            if prec == "bf16" and cap == "AVX2":
                continue  # bf16 kernels need AVX-512 bf16 / AMX
            for hint in ("latency", "throughput"):
                out = work / f"out_{prec}_{hint}_{cap or 'own'}"
                settings = ProgramSettings(args.batch, args.height, args.width, prec, hint, False, 0)
                ips = run_program(exe, models[prec], work / "test.u8", out, settings, args.threads, cap)
                if prec == "fp32" and hint == "latency":
                    base = ips
                if cap is None and hint == "latency":
                    feats[prec] = global_features(out, n)
                rows.append([label, prec, hint, f"{ips:.1f}", f"{ips / base:.2f}x" if base else ""])
    print_table(
        f"C++ program, ResNet-{args.depth} {args.height}x{args.width}, {n} images, batch {args.batch}, {args.threads} threads; CPU flags: {isa}",
        ["oneDNN ISA", "precision", "OpenVINO hint", "images/s", "vs fp32 latency (same ISA)"],
        rows,
    )
    agree = []
    for prec in precisions[1:]:
        cos = (feats[prec] * feats["fp32"]).sum(axis=1)
        agree.append([prec, f"{cos.mean():.5f}", f"{cos.min():.5f}"])
    print_table("Agreement of the global features with fp32 (cosine)", ["precision", "mean", "min"], agree)
    print(
        f"\nint8 model: {q['model_bytes'] / 2**20:.1f} MB (fp32 ONNX {os.path.getsize(work / 'model.onnx') / 2**20:.1f} MB); quantised in {q['seconds']} s on {q['calibration_images']} images"
    )


if __name__ == "__main__":
    main()
