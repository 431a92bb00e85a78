"""Search throughput (issue: search): a batch of query crops against a Market-size gallery whose
features exist, through the search rules' own functions -- search_list (decode check, sha256),
search_features (the C++ program on the queries: feature extraction included) and search (the
two-stage global + local ranking with ``search.shortlist``, matches.csv and the page). Each stage
runs in a fresh process, as Snakemake runs each rule's script; its wall time (interpreter start and
imports included) and peak RSS are measured, the C++ program's peak by the kernel's child accounting.

  python bench/search.py [--queries 1000] [--gallery 15913] [--shortlist 200] [--precisions fp32 int8]
      [--depth 50 --height 256 --width 128] [--exe results/infer/bin/aligned_infer] [--work /tmp/alignedreid-search-bench]
      [--check-queries 100]

The network is a ResNet-``depth`` with random weights and randomised BatchNorm (bench/int8.py);
the queries are the demo generator's crops under arbitrary names in nested folders; the gallery's
features are synthetic (unit-length stripes), written as the evaluation gallery's feature file.
The first ``--check-queries`` queries' top-k is compared with the exhaustive global + local ranking
(every pair's DMLI); bench/search_scale.py takes galleries up to a million images.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, print_table  # noqa: E402
from int8 import cpp_program, isa_flags, make_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _queries(work: Path, n: int) -> Path:
    """``n`` crops of the demo generator copied under arbitrary names into nested folders."""
    import pandas as pd

    from alignedreid.data.prepare import prepare_dataset
    from alignedreid.foundation.config import resolve

    folder = work / f"queries_{n}"
    if folder.is_dir():
        return folder
    data = work / "data"
    spec = {"seed": 5, "train_ids": 40, "test_ids": max(8, -(-n // 10)), "images_per_id": 11, "queries_per_id": 1, "distractors": 0, "junk": 0}
    prepare_dataset(resolve({"dataset": {"synthetic": spec}})["dataset"], data, work_dir=data, workers=2)
    paths = pd.read_csv(data / "gallery.csv").path.head(n)
    for i, p in enumerate(paths):
        dst = folder / f"camera {i % 7}" / f"crop-{i:05d} ({i % 3}).jpg"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dst)
    return folder


def _gallery(work: Path, n: int, dim: int, stripes: int) -> Path:
    from alignedreid.features.files import save_features

    path = work / f"gallery_{n}_{stripes}x{dim}.npz"
    if path.is_file():
        return path
    rng = np.random.default_rng(0)
    glob = rng.standard_normal((n, dim), dtype=np.float32)
    loc = rng.standard_normal((n, stripes, dim), dtype=np.float32)
    loc /= np.linalg.norm(loc, axis=2, keepdims=True)
    save_features(path, glob, loc, np.arange(n) // 4 + 1, np.arange(n) % 6, [f"gallery/{i}.jpg" for i in range(n)])
    return path


def _stage(stage: str, args_json: str, out_json: str) -> None:
    """One stage of the search in a fresh process, as Snakemake runs each rule's script: its peak RSS sampled."""
    import logging

    from alignedreid.search import cache, listing, page, ranking
    from alignedreid.serving.program_settings import ProgramSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    a = json.loads(Path(args_json).read_text())
    work = Path(a["work"]) / f"run_{a['precision']}"
    verification = {"variant": "global_local", "threshold": 1.5, "target_fpr": 1e-3, "tpr": 0.9}
    with PeakRSS() as mem:
        if stage == "search_list":
            listing.list_images(a["queries"], work / "queries.csv", work / "skipped.txt", "queries")
        elif stage == "search_features":
            settings = ProgramSettings(16, a["height"], a["width"], a["precision"], "latency", False, 0)
            cache.cached_features(
                work / "queries.csv", work / "queries.view.npz", work / "cache", a["exe"], a["model"], settings, a["threads"], "float32"
            )
        else:  # search: ranking, matches.csv and the page
            _, ng = ranking.search(work / "queries.view.npz", a["gallery"], verification, work / "matches.csv", a["top_k"], a["shortlist"])
            page.write_search_report(work / "matches.csv", verification, work / "report.html", ng, work / "skipped.txt")
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if stage == "search_features" else 0  # the C++ program
    Path(out_json).write_text(json.dumps({"peak": mem.peak, "child_peak": child_kb * 1024}))


STAGES = {
    "search_list": "list + decode check + sha256",
    "search_features": "query features (C++ program)",
    "search": "rank (global + local, shortlist) + matches.csv + page",
}


def run_stages(spec: dict, work: Path) -> list[tuple[str, float, float, float]]:
    """(stage, wall s including the interpreter start and imports, peak RSS, the C++ program's peak) per stage."""
    run = work / f"run_{spec['precision']}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    (work / "args.json").write_text(json.dumps(spec))
    out = []
    for stage, label in STAGES.items():
        t = time.perf_counter()
        proc = mp.get_context("spawn").Process(target=_stage, args=(stage, str(work / "args.json"), str(work / "out.json")))
        proc.start()
        proc.join()
        if proc.exitcode:
            raise SystemExit(f"search bench: stage {stage} ({spec['precision']}) failed with exit code {proc.exitcode}")
        res = json.loads((work / "out.json").read_text())
        out.append((label, time.perf_counter() - t, res["peak"], res["child_peak"]))
    return out


def agreement(work: Path, gallery_npz: Path, top_k: int, count: int) -> float:
    """Share of the first ``count`` queries whose matches.csv top-k equals the exhaustive global + local
    ranking of the full distance matrix (search.ranking.search_distances, every pair's DMLI)."""
    import pandas as pd

    from alignedreid.features.files import FeatureSet, load_features
    from alignedreid.search.cache import load_view
    from alignedreid.search.ranking import search_distances

    q = load_view(work / "queries.view.npz").features()
    q = FeatureSet(*(a[:count] for a in (q.global_, q.local, q.pid, q.camid, q.path, q.row)))
    g = load_features(gallery_npz)
    d = search_distances(q, g, "global_local")
    want = np.lexsort((np.broadcast_to(np.arange(d.shape[1]), d.shape), d), axis=1)[:, :top_k]
    matches = pd.read_csv(work / "matches.csv")
    got = matches.groupby("query", sort=False).gallery.apply(list)
    return float(np.mean([got[q.path[i]] == [g.path[j] for j in want[i]] for i in range(len(q))]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--gallery", type=int, default=15913)
    ap.add_argument("--shortlist", type=int, default=200)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--check-queries", type=int, default=100, help="queries whose top-k is compared with exhaustive ranking")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--exe", help="the built C++ program (default: build one into the work folder)")
    ap.add_argument("--work", default="/tmp/alignedreid-search-bench")
    args = ap.parse_args()

    from alignedreid.serving.export import export_model

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / f"random_r{args.depth}.ckpt"
    if not ckpt.is_file():
        make_checkpoint(ckpt, args.depth)
    if not (work / "model.onnx").is_file():
        export_model(ckpt, work, {"depth": args.depth, "height": args.height, "width": args.width}, {"batch_size": 1, "formats": ["ONNX"]}, "CPU")
    dim, stripes = (512 if args.depth < 50 else 2048), args.height // 32  # the model's global width and stripe count
    queries, gallery = _queries(work, args.queries), _gallery(work, args.gallery, dim, stripes)
    models = {"fp32": work / "model.onnx"}
    if "int8" in args.precisions and not (work / "int8" / "model.xml").is_file():
        from alignedreid.serving.quantize import quantize_model

        quantize_model(work / "model.onnx", work / "data" / "train.csv", work / "int8", args.height, args.width, 300, 0)
    models["int8"] = work / "int8" / "model.xml"
    exe = cpp_program(args.exe, work)
    isa = isa_flags()
    rows = []
    for prec in args.precisions:
        spec = {
            "work": str(work),
            "precision": prec,
            "queries": str(queries),
            "gallery": str(gallery),
            "model": str(models[prec]),
            "exe": str(exe),
            "height": args.height,
            "width": args.width,
            "threads": args.threads,
            "shortlist": args.shortlist,
            "top_k": args.top_k,
        }
        stages = run_stages(spec, work)
        for label, sec, peak, child in stages:
            rows.append([prec, label, f"{sec:.1f}", f"{peak / 2**30:.2f}" + (f" (C++ program {child / 2**30:.2f})" if child else "")])
        total = sum(sec for _, sec, _, _ in stages)
        worst = max(peak for _, _, peak, _ in stages)
        agree = agreement(work / f"run_{prec}", gallery, args.top_k, min(args.check_queries, args.queries))
        rows.append(
            [
                prec,
                "**all three stages**",
                f"{total:.1f}",
                f"**{args.queries / total:.1f} queries/s**, largest stage {worst / 2**30:.2f} GiB; "
                f"top-{args.top_k} = exhaustive for {100 * agree:.0f} % of {min(args.check_queries, args.queries)} queries",
            ]
        )
    print_table(
        f"search: {args.queries} query crops vs a {args.gallery}-image gallery ({stripes} x {dim}-d stripes, features on disk), ResNet-{args.depth} "
        f"{args.height}x{args.width}, top {args.top_k}, {args.threads} threads, CPU flags: {isa}",
        ["precision", "stage (own process, as Snakemake runs it)", "wall s", "peak RSS GiB"],
        rows,
    )


if __name__ == "__main__":
    main()
