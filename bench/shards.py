"""Inference in shards (``infer.shards``) against one shard, as a 2-core machine runs them: each shard's
``preprocess`` and ``infer_cpp`` in a fresh interpreter (as Snakemake runs each job's script), one
job at a time (each takes both cores: ``infer.threads`` 2), then the gather of ``features_cpp``.
Prints each count's summed job time against one shard and whether the gathered feature file is
byte for byte the one-shard file. ``--side-by-side P``: the shards' jobs P at a time, each shard's
preprocess then its infer_cpp (as ``--cores 2`` runs them with ``infer.threads: 1`` and P = 2);
the time is then the wall time of all of them. ``--baseline``: first one shard using every core the
others use (threads x side-by-side threads, one job), the row every other is compared with.

  python bench/shards.py --workdir /tmp/reh [--rows 2000] [--shards 1 4] [--batch 16]
      [--height 256 --width 128] [--threads 2] [--side-by-side 1] [--baseline] [--work /tmp/alignedreid-shards] [--exe PROGRAM]

``--workdir``: a finished run (its results/data/gallery.csv, results/export/model.onnx and
results/infer/bin/aligned_infer; paths in the manifest are relative to it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table  # noqa: E402
from int8 import isa_flags  # noqa: E402

PREPROCESS = (
    "import sys; from alignedreid.serving.cpp_program import preprocess; "
    "preprocess(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), 'packed', range(int(sys.argv[6]), int(sys.argv[7]))); "
    "from alignedreid.foundation.runlog import exit_without_teardown; exit_without_teardown()"  # as workflow/scripts/preprocess.py ends
)
INFER = (
    "import sys, json; from alignedreid.serving.cpp_run import run_cpp_program; "
    "from alignedreid.serving.program_settings import ProgramSettings; "
    "run_cpp_program(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], ProgramSettings.from_param(json.loads(sys.argv[5])), int(sys.argv[6]))"
)


def _job(code: str, *args, cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--shards", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--side-by-side", type=int, default=1, help="shard jobs run at once (1: one at a time)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/alignedreid-shards"))
    ap.add_argument("--exe", type=Path, help="the C++ program to run (default: the finished run's)")
    ap.add_argument("--baseline", action="store_true", help="first a row of one shard with threads x side-by-side threads, one job")
    args = ap.parse_args()
    from alignedreid.serving.cpp_program import collect_cpp_outputs
    from alignedreid.serving.program_settings import ProgramSettings
    from alignedreid.serving.shards import shard_rows

    wd = args.workdir.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    manifest = args.work / "gallery.csv"
    df = pd.read_csv(wd / "results/data/gallery.csv").head(args.rows)
    df.to_csv(manifest, index=False)
    args.rows = len(df)  # the gallery may hold fewer rows than asked for
    exe, model = (args.exe or wd / "results/infer/bin/aligned_infer").resolve(), wd / "results/export/model.onnx"
    settings = ProgramSettings(args.batch, args.height, args.width, "fp32", "latency", False, 0)
    rows, files = [], {}

    def shard_jobs(run, k, part):
        """One shard's preprocess then infer_cpp: (preprocess s, infer_cpp s)."""
        count, threads, _ = run
        inp, out = args.work / f"in.{count}.{k}.u8", args.work / f"out.{count}.{k}"
        p = _job(PREPROCESS, manifest, inp, args.height, args.width, threads, part.start, part.stop, cwd=wd)
        i = _job(INFER, exe, model, inp, out, json.dumps(settings.as_param()), threads, cwd=wd)
        inp.unlink()
        return p, i

    # (shards, threads per job, jobs at a time); --baseline first: one shard with every core's thread
    runs = [(1, args.threads * args.side_by_side, 1)] if args.baseline else []
    runs += [(count, args.threads, args.side_by_side) for count in args.shards]
    for run in runs:
        count, threads, side = run
        parts = shard_rows(args.rows, count, args.batch)
        dirs = [args.work / f"out.{count}.{k}" for k in range(count)]
        t = time.perf_counter()
        with ThreadPoolExecutor(side) as pool:
            times = list(pool.map(shard_jobs, [run] * count, range(count), parts))
        wall = time.perf_counter() - t
        pre, inf = (sum(x[j] for x in times) for j in (0, 1))  # summed job times (they overlap side by side)
        files[run] = args.work / f"features.{count}.t{threads}.p{side}.npz"  # kept: compare across runs with cmp
        t = time.perf_counter()
        os.chdir(wd)
        collect_cpp_outputs(manifest, dirs, files[run], batch=args.batch)
        gather = time.perf_counter() - t
        total = wall + gather
        rows.append([count, threads, side, f"{pre:.1f}", f"{inf:.1f}", f"{gather:.1f}", f"{total:.1f}", total])
    base = rows[0][-1]
    same = {r: files[r].read_bytes() == files[runs[0]].read_bytes() for r in runs}
    print_table(
        f"infer.shards on {args.rows:,} images, {args.height}x{args.width}, batch {args.batch} (each job a fresh interpreter; "
        "'at a time': jobs side by side, each shard's preprocess then its infer_cpp)",
        [
            "shards",
            "threads per job",
            "jobs at a time",
            "preprocess s (jobs' sum)",
            "infer_cpp s (jobs' sum)",
            "gather s",
            "total s (wall)",
            "vs first row",
            "features vs first row",
        ],
        [[*r[:7], f"{r[-1] / base:.2f}x", "byte for byte" if same[run] else "DIFFERENT"] for r, run in zip(rows, runs)],
    )
    print(f"\n{os.cpu_count()} CPUs ({isa_flags()})")


if __name__ == "__main__":
    main()
