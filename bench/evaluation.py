"""Benchmark of the evaluation stage (issue: evaluation). Prints markdown tables.

  python bench/evaluation.py --part market    # 3,368 x 15,913, 8x2048-d stripes (minutes)
  python bench/evaluation.py --part market128 # same with 8x128-d stripes
  python bench/evaluation.py --part small     # 1,000 x 5,000 vs straightforward implementations
  python bench/evaluation.py --part rank     # CMC/mAP and top-10: previous vs current at Market shape
  python bench/evaluation.py --part kernel    # DMLI kernel: previous vs current, same run, 8x128 and 8x2048
  python bench/evaluation.py --part msmt17   # 11,659 x 82,161: global variants measured, local extrapolated
  python bench/evaluation.py --part shortlist # evaluation.shortlist K vs exhaustive, Market shape, every variant
  python bench/evaluation.py --part msmt17-shortlist [--source files]  # the evaluate stage at MSMT17 shape with shortlists,
      # reading the evaluation stores written first (default, as the workflow does) or the feature files
  python bench/evaluation.py --part all      # every part except msmt17
Random unit-norm features with identity structure stand in for a trained model's.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, gemm_rate, measure, print_table  # noqa: E402

from alignedreid.evaluation import local_distance, rank, re_ranking  # noqa: E402
from alignedreid.evaluation.distance import global_distance  # noqa: E402
from alignedreid.evaluation.ranking import rank_details  # noqa: E402
from alignedreid.evaluation.reference import ref_local_distance, ref_re_ranking  # noqa: E402
from alignedreid.evaluation.topk import smallest_k  # noqa: E402
from alignedreid.foundation.config import section_defaults  # noqa: E402


def make_features(nq, ng, stripes, dim, seed=0, ids=750):
    rng = np.random.default_rng(seed)
    centres_g = rng.standard_normal((ids, 2048), dtype=np.float32)
    centres_l = rng.standard_normal((ids, stripes, dim), dtype=np.float32)
    q_pid = rng.integers(0, ids, nq)
    g_pid = rng.integers(0, ids, ng)

    def feats(pids):
        g = centres_g[pids] + 2.0 * rng.standard_normal((len(pids), 2048), dtype=np.float32)
        loc = np.empty((len(pids), stripes, dim), np.float32)
        for s in range(0, len(pids), 2048):
            e = min(s + 2048, len(pids))
            loc[s:e] = centres_l[pids[s:e]] + 2.0 * rng.standard_normal((e - s, stripes, dim), dtype=np.float32)
        loc /= np.linalg.norm(loc, axis=2, keepdims=True)
        return g, loc

    qg, ql = feats(q_pid)
    gg, gl = feats(g_pid)
    return (qg, ql, q_pid + 1, rng.integers(0, 6, nq)), (gg, gl, g_pid + 1, rng.integers(0, 6, ng))


def market(stripes_dim: int, rate: float):
    nq, ng, m = 3368, 15913, 8
    q, g = make_features(nq, ng, m, stripes_dim)
    rows = []
    flops = {
        "local q-g": 2.0 * nq * m * ng * m * stripes_dim,
        "local q-q": 2.0 * nq * m * nq * m * stripes_dim / 2,
        "local g-g": 2.0 * ng * m * ng * m * stripes_dim / 2,
    }
    total_t, total_floor, peak = 0.0, 0.0, 0

    def step(name, fn, *a, **kw):
        nonlocal total_t, total_floor, peak
        out, dt, pk = measure(fn, *a, **kw)
        fl = flops.get(name, 0.0)
        floor = fl / rate
        total_t += dt
        total_floor += floor
        peak = max(peak, pk)
        rows.append(
            [
                name,
                f"{dt:.1f}",
                f"{fl / 1e12:.2f}" if fl else "-",
                f"{floor:.1f}" if fl else "-",
                f"{dt / floor:.2f}" if fl else "-",
                f"{pk / 2**30:.2f}",
            ]
        )
        return out

    qg = step("global q-g", global_distance, q[0], g[0])
    qq = step("global q-q", global_distance, q[0], q[0])
    gg = step("global g-g", global_distance, g[0], g[0])
    lqg = step("local q-g", local_distance, q[1], g[1])
    lqq = step("local q-q", local_distance, q[1], q[1])
    lgg = step("local g-g", local_distance, g[1], g[1])
    step("re-rank global", re_ranking, np.sqrt(qg), np.sqrt(qq), np.sqrt(gg))
    qgl = qg + lqg
    qq += lqq
    del lqq
    gg += lgg
    del lgg
    gc.collect()
    np.sqrt(gg, out=gg)
    rr = step("re-rank global+local", re_ranking, np.sqrt(qgl), np.sqrt(qq), gg)
    for name, d in [("global", qg), ("global_local", qgl), ("global_rerank", rr), ("global_local_rerank", rr)]:
        step(f"rank {name}", rank, d, q[2], g[2], q[3], g[3])
    rows.append(
        [
            "**total**",
            f"{total_t:.1f}",
            f"{sum(flops.values()) / 1e12:.2f}",
            f"{total_floor:.1f}",
            f"{total_t / total_floor:.2f}",
            f"{peak / 2**30:.2f}",
        ]
    )
    print_table(
        f"Market scale: {nq} x {ng}, 8x{stripes_dim}-d stripes, GEMM rate {rate / 1e9:.0f} GFLOP/s",
        ["part", "time s", "TFLOP", "floor s", "time/floor", "peak RSS GiB"],
        rows,
    )


def small():
    nq, ng = 1000, 5000
    q, g = make_features(nq, ng, 8, 128, seed=1)
    rows = []
    fast_l, tf, _ = measure(local_distance, q[1], g[1])
    slow_l, ts, _ = measure(ref_local_distance, q[1], g[1])
    rows.append(["local_distance q-g", f"{ts:.2f}", f"{tf:.2f}", f"{ts / tf:.1f}x", f"{np.abs(fast_l - slow_l).max():.1e}"])
    d_qg = np.sqrt(global_distance(q[0], g[0]))
    d_qq = np.sqrt(global_distance(q[0], q[0]))
    d_gg = np.sqrt(global_distance(g[0], g[0]))
    fast_r, tf, _ = measure(re_ranking, d_qg, d_qq, d_gg)
    slow_r, ts, _ = measure(ref_re_ranking, d_qg, d_qq, d_gg)
    rows.append(["re_ranking", f"{ts:.2f}", f"{tf:.2f}", f"{ts / tf:.1f}x", f"{np.abs(fast_r - slow_r).max():.1e}"])
    print_table(
        f"{nq} x {ng}, 8x128-d stripes: this package vs straightforward NumPy",
        ["part", "straightforward s", "ours s", "speed-up", "max |diff|"],
        rows,
    )


def kernel(rate: float, nq: int = 800, ng: int = 4000):
    """Previous and current DMLI kernel on the same features (q-g), with the GEMM floor."""
    from _previous_local import previous_local_distance

    rows = []
    for dim in (128, 2048):
        q, g = make_features(nq, ng, 8, dim, seed=3)
        previous_local_distance(q[1][:2], g[1][:2])  # compile
        old, t_old, _ = measure(previous_local_distance, q[1], g[1])
        new, t_new, _ = measure(local_distance, q[1], g[1])
        floor = 2.0 * nq * ng * 64 * dim / rate
        per_pair_ns = 1e9 * t_new / (nq * ng * 64)
        rows.append(
            [
                f"8x{dim}",
                f"{t_old:.2f}",
                f"{t_new:.2f}",
                f"{t_old / t_new:.2f}x",
                f"{floor:.2f}",
                f"{t_new / floor:.2f}",
                f"{per_pair_ns:.2f}",
                f"{np.abs(old - new).max():.1e}",
            ]
        )
    print_table(
        f"DMLI local distance {nq} x {ng}: previous kernel vs current (same run)",
        ["stripes", "previous s", "current s", "speed-up", "GEMM floor s", "current/floor", "ns per stripe pair", "max |diff|"],
        rows,
    )


def ranking(nq: int = 3368, ng: int = 19732):
    """Previous (argsort of every row) vs current (numba, sorts only the matches) CMC/mAP and
    top-10 lists, Market-1501's shape, same distances."""
    from _previous_rank import previous_rank_details

    q, g = make_features(nq, ng, 1, 4, seed=5)
    noise = np.random.default_rng(6).random((nq, ng), dtype=np.float32)
    dist = global_distance(q[0], g[0]) + 2.5 * noise  # blur the easy synthetic identities to a mid-range mAP
    g_pid = g[2].copy()
    g_pid[:2798] = -1  # Market-1501's gallery holds 2,798 junk boxes
    rank_details(dist[:4], q[2][:4], g_pid, q[3][:4], g[3])  # compile
    smallest_k(dist[:4], 10)
    old, t_old, _ = measure(previous_rank_details, dist, q[2], g_pid, q[3], g[3])
    new, t_new, _ = measure(rank_details, dist, q[2], g_pid, q[3], g[3])
    top_old, t_top_old, _ = measure(lambda d: np.argsort(d, axis=1, kind="stable")[:, :10], dist)
    top_new, t_top_new, _ = measure(smallest_k, dist, 10)
    same = abs(old[4] - new.mAP) < 1e-12 and np.array_equal(old[3], new.cmc) and np.array_equal(top_old, top_new)
    rows = [
        ["CMC + mAP", f"{t_old:.2f}", f"{t_new:.2f}", f"{t_old / t_new:.1f}x", f"mAP {new.mAP:.6f}"],
        ["top-10 lists", f"{t_top_old:.2f}", f"{t_top_new:.2f}", f"{t_top_old / t_top_new:.1f}x", "identical" if same else "DIFFERENT"],
    ]
    print_table(
        f"rank, {nq} x {ng} (Market-1501 shape): previous vs current, same run", ["part", "previous s", "current s", "speed-up", "result"], rows
    )


def msmt17(rate: float, nq: int = 11659, ng: int = 82161):
    """MSMT17 scale: the global variants measured (re-ranking streamed from features, the gallery-
    gallery matrix would be 25 GB); the local variants extrapolated from a measured q-g block."""
    from alignedreid.evaluation.rerank import re_ranking_features

    q, g = make_features(nq, ng, 1, 4, seed=8, ids=3060)
    rows, peak_all = [], 0

    def step(name, fn, *a):
        nonlocal peak_all
        out, dt, pk = measure(fn, *a)
        peak_all = max(peak_all, pk)
        rows.append([name, f"{dt:.1f}", f"{pk / 2**30:.2f}", "measured"])
        return out

    qg = step("global q-g (2048-d)", global_distance, q[0], g[0])
    det = step("rank global (CMC + mAP)", rank_details, qg, q[2], g[2], q[3], g[3])
    step("top-10 lists global", smallest_k, qg, 10)
    rr = step("re-rank global, on the fly", re_ranking_features, q[0], g[0])
    det_rr = step("rank global_rerank", rank_details, rr, q[2], g[2], q[3], g[3])
    del qg, rr
    bq, bg = 400, 4000
    for dim in (128, 2048):
        lq, lg = make_features(bq, bg, 8, dim, seed=9)
        _, dt, _ = measure(local_distance, lq[1], lg[1])
        per_pair = dt / (bq * bg)
        rows.append(
            [f"local q-g 8x{dim} (global_local)", f"{per_pair * nq * ng:.0f}", "3.6 (q x g float32)", f"extrapolated from {bq}x{bg} in {dt:.1f} s"]
        )
        sym = per_pair * (nq * nq + ng * ng) / 2
        rows.append(
            [
                f"local q-q + g-g 8x{dim} (global_local_rerank)",
                f"{sym:.0f}",
                f"{ng * ng * 4 / 2**30:.1f} (g x g float32)",
                "extrapolated; refused above evaluation.matrix_budget_gb",
            ]
        )
    print_table(
        f"MSMT17 scale: {nq} x {ng}, GEMM rate {rate / 1e9:.0f} GFLOP/s; global mAP {det.mAP:.3f}, re-ranked {det_rr.mAP:.3f}; "
        f"peak RSS of the measured parts {peak_all / 2**30:.2f} GiB",
        ["part", "time s", "peak RSS GiB", "how"],
        rows,
    )


def correlated_features(nq, ng, stripes, dim, noise, seed=0, ids=750, latent=256):
    """Query/gallery features whose global and local parts share each image's identity signal (as
    one backbone's do): a latent per image = identity centre + noise, projected to the 2048-d global
    feature and to the stripes. ``noise`` sets the difficulty."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, latent), dtype=np.float32)
    wg = rng.standard_normal((latent, 2048), dtype=np.float32) / np.sqrt(latent)
    wl = rng.standard_normal((stripes, latent, dim), dtype=np.float32) / np.sqrt(latent)

    def feats(pids):
        z = centres[pids] + noise * rng.standard_normal((len(pids), latent), dtype=np.float32)
        loc = np.einsum("nl,sld->nsd", z, wl) + 0.5 * rng.standard_normal((len(pids), stripes, dim), dtype=np.float32)
        loc /= np.linalg.norm(loc, axis=2, keepdims=True)
        return z @ wg, loc

    q_pid, g_pid = rng.integers(0, ids, nq), rng.integers(0, ids, ng)
    (qg, ql), (gg, gl) = feats(q_pid), feats(g_pid)
    return (qg, ql, q_pid + 1, rng.integers(0, 6, nq)), (gg, gl, g_pid + 1, rng.integers(0, 6, ng))


def _feature_set(glob, loc, pid, camid):
    from alignedreid.features.files import FeatureSet

    n = len(pid)
    return FeatureSet(glob, loc, pid.astype(np.int64), camid.astype(np.int64), np.array([f"{i}.jpg" for i in range(n)]), np.arange(n))


def shortlist_curve(nq: int = 3368, ng: int = 15913, dim: int = 2048, noise: float = 1.7, ks=(50, 100, 200, 400)):
    """evaluation.shortlist at Market-1501's shape through evaluate_features: every variant's mAP /
    rank-1 and the time over K against the exhaustive evaluation, on correlated features of a
    realistic difficulty (the global variants do not depend on K and are computed once)."""
    from alignedreid.evaluation.run import evaluate_features

    q, g = correlated_features(nq, ng, 8, dim, noise)
    cfg = section_defaults("evaluation")  # the recipe's re-ranking (k1 20, k2 6, lambda 0.3), every variant
    t = time.perf_counter()
    ref, _, ref_times = evaluate_features(_feature_set(*q), _feature_set(*g), cfg, verification=False)
    t_ref = time.perf_counter() - t
    rows = [["exhaustive", "-", *(f"{100 * ref[v]['mAP']:.2f} / {100 * ref[v]['cmc'][0]:.2f}" for v in VARIANTS_ALL), f"{t_ref:.0f}"]]
    local = ["global_local", "global_local_rerank"]
    for k in ks:
        t = time.perf_counter()
        got, _, _ = evaluate_features(_feature_set(*q), _feature_set(*g), {**cfg, "variants": ["global", *local], "shortlist": k}, verification=False)
        dt = time.perf_counter() - t
        cells = []
        for v in VARIANTS_ALL:
            m = got.get(v, ref[v])  # global, global_rerank: independent of K
            cells.append(f"{100 * (m['mAP'] - ref[v]['mAP']):+.2f} / {100 * (m['cmc'][0] - ref[v]['cmc'][0]):+.2f}")
        rows.append([str(k), "mAP / rank-1 change (points)", *cells, f"{dt:.0f}"])
    print_table(
        f"evaluation.shortlist K at Market-1501's shape, {nq} x {ng}, 8 x {dim}-d stripes, k1 20, k2 6, lambda 0.3 "
        f"(exhaustive row: mAP % / rank-1 %; K rows: change against it; time: global + the two local variants for K, all four exhaustive: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in ref_times.items() if v > 5)
        + ")",
        ["K", "cells", *VARIANTS_ALL, "time s"],
        rows,
    )


VARIANTS_ALL = ("global", "global_local", "global_rerank", "global_local_rerank")


def _write_msmt17_features(folder: Path, nq: int, ng: int, dim: int, noise: float, seed: int = 0, ids: int = 3060, latent: int = 256):
    """correlated_features at MSMT17's size, generated and written a block at a time (the gallery's
    stripes alone are 5.4 GB at 8 x 2048), as evaluate reads them: two .npz feature files."""
    from alignedreid.features.files import save_features

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, latent), dtype=np.float32)
    wg = rng.standard_normal((latent, 2048), dtype=np.float32) / np.sqrt(latent)
    wl = rng.standard_normal((8, latent, dim), dtype=np.float32) / np.sqrt(latent)
    for name, n in (("query", nq), ("gallery", ng)):
        pid = rng.integers(0, ids, n)
        glob = np.empty((n, 2048), np.float32)
        loc = np.empty((n, 8, dim), np.float32)
        for s in range(0, n, 4096):
            e = min(s + 4096, n)
            z = centres[pid[s:e]] + noise * rng.standard_normal((e - s, latent), dtype=np.float32)
            glob[s:e] = z @ wg
            loc[s:e] = np.einsum("nl,sld->nsd", z, wl) + 0.5 * rng.standard_normal((e - s, 8, dim), dtype=np.float32)
            loc[s:e] /= np.linalg.norm(loc[s:e], axis=2, keepdims=True)
        save_features(folder / f"{name}.npz", glob, loc, pid + 1, rng.integers(0, 15, n), [f"{i}.jpg" for i in range(n)])
        del glob, loc


def _evaluate_files_child(query_npz, gallery_npz, shortlist, stripe_dtype, out_json):
    """Run in a fresh process: what the evaluate stage does (evaluate_files: load both files, all four
    variants, verification), its own peak RSS sampled."""
    import json
    import logging

    from alignedreid.evaluation.run import evaluate_files

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = {**section_defaults("evaluation"), "shortlist": shortlist, "stripe_dtype": stripe_dtype}
    with PeakRSS() as mem:
        t = time.perf_counter()
        metrics, _, times, _, _ = evaluate_files(query_npz, gallery_npz, cfg)
        total = time.perf_counter() - t
    from alignedreid.foundation.runlog import peak_rss_gib

    peak = max(mem.peak, peak_rss_gib() * 2**30)  # sampled, and the kernel's own high-water mark (VmHWM)
    Path(out_json).write_text(json.dumps({"metrics": metrics, "times": times, "total": total, "peak": peak, "peak_anon": mem.peak_anon}))


def msmt17_shortlist(
    dim: int = 2048,
    noise: float = 1.7,
    shortlist: int = 200,
    nq: int = 11659,
    ng: int = 82161,
    stripe_dtype: str = "float16",
    features_dir=None,
    source: str = "store",
):
    """All four variants at MSMT17's shape with evaluation.shortlist, in a fresh process that reads the
    features as the evaluate stage does (``source`` store: the evaluation stores, written first from
    the feature files as the evaluation_store rule does, and timed; files: the feature files loaded):
    time and peak RSS of the whole stage. ``features_dir`` keeps the feature files (written there
    once, read by later runs with other settings)."""
    import json
    import multiprocessing as mp
    import tempfile

    with tempfile.TemporaryDirectory(prefix="msmt17-bench-") as tmp:
        folder = Path(features_dir or tmp)
        if not (folder / "gallery.npz").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            _write_msmt17_features(folder, nq, ng, dim, noise)
            print(f"features written in {time.perf_counter() - t:.0f} s")
        print("features: " + ", ".join(f"{p.name} {p.stat().st_size / 2**30:.2f} GiB" for p in sorted(folder.glob("*.npz"))))
        inputs = [folder / "query.npz", folder / "gallery.npz"]
        stores = []
        if source == "store":
            from alignedreid.evaluation.stored import write_evaluation_store
            from alignedreid.features.store import FeatureStore

            for npz in list(inputs):
                out = Path(tmp) / f"{npz.stem}.store"
                with PeakRSS() as mem:
                    t = time.perf_counter()
                    write_evaluation_store(npz, out, stripe_dtype)
                stores.append(
                    [
                        f"evaluation_store {npz.stem}",
                        f"{time.perf_counter() - t:.1f}",
                        f"{mem.peak / 2**30:.2f}",
                        f"{FeatureStore(out).disk_bytes() / 2**30:.2f}",
                    ]
                )
                inputs[inputs.index(npz)] = out
        proc = mp.get_context("spawn").Process(target=_evaluate_files_child, args=(*inputs, shortlist, stripe_dtype, Path(tmp) / "out.json"))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"evaluation child failed with exit code {proc.exitcode}")
        res = json.loads((Path(tmp) / "out.json").read_text())
    if stores:
        print_table("the evaluation stores, written from the feature files (one job each)", ["job", "time s", "peak RSS GiB", "store GiB"], stores)
    rows = [[k, f"{v:.1f}"] for k, v in res["times"].items()]
    rows.append(["**whole stage**", f"{res['total']:.1f}"])
    print_table(
        f"MSMT17 shape {nq} x {ng}, 8 x {dim}-d stripes as {stripe_dtype}, read from the {'evaluation stores (mapped)' if stores else 'feature files (loaded)'}, "
        f"evaluation.shortlist {shortlist}, all four variants + verification; peak RSS {res['peak'] / 2**30:.2f} GiB "
        f"(file pages mapped included), of it anonymous (the stage's own memory) {res['peak_anon'] / 2**30:.2f} GiB",
        ["part", "time s"],
        rows,
    )
    m = res["metrics"]
    print_table(
        "the metrics (synthetic correlated features)",
        ["variant", "mAP %", "rank-1 %", "mINP %"],
        [[v, f"{100 * m[v]['mAP']:.2f}", f"{100 * m[v]['cmc'][0]:.2f}", f"{100 * m[v]['mINP']:.2f}"] for v in VARIANTS_ALL],
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--part", choices=["market", "market128", "small", "kernel", "rank", "msmt17", "shortlist", "msmt17-shortlist", "all"], default="all"
    )
    ap.add_argument(
        "--noise", type=float, default=1.7, help="difficulty of the shortlist parts' features (1.7: global mAP about 76 % at Market-1501 shape)"
    )
    ap.add_argument("--dim", type=int, default=2048, help="stripe width of the shortlist parts")
    ap.add_argument("--shortlist", type=int, default=200, help="evaluation.shortlist of the msmt17-shortlist part")
    ap.add_argument("--stripe-dtype", choices=["float32", "float16"], default="float16", help="evaluation.stripe_dtype of the msmt17-shortlist part")
    ap.add_argument("--features-dir", type=Path, help="msmt17-shortlist: keep its feature files here (6.5 GB) and reuse them on the next run")
    ap.add_argument(
        "--source",
        choices=["store", "files"],
        default="store",
        help="msmt17-shortlist: evaluate the evaluation stores (as the stage does) or the feature files",
    )
    ap.add_argument("--ks", type=int, nargs="+", default=[50, 100, 200, 400], help="the shortlist part's K values")
    args = ap.parse_args()
    local_distance(np.ones((2, 2, 4), np.float32), np.ones((2, 2, 4), np.float32))  # compile the kernel
    rate = gemm_rate()
    print(f"float32 GEMM rate on this machine: {rate / 1e9:.1f} GFLOP/s")
    if args.part in ("kernel", "all"):
        kernel(rate)
    if args.part in ("rank", "all"):
        ranking()
    if args.part in ("small", "all"):
        small()
    if args.part in ("market128", "all"):
        market(128, rate)
    if args.part in ("market", "all"):
        market(2048, rate)
    if args.part == "msmt17":  # not in "all": ~10 minutes and ~8 GB
        msmt17(rate)
    if args.part == "shortlist":  # not in "all": the exhaustive reference alone takes minutes
        shortlist_curve(dim=args.dim, noise=args.noise, ks=tuple(args.ks))
    if args.part == "msmt17-shortlist":  # not in "all": ~20 minutes, ~6 GB
        msmt17_shortlist(
            dim=args.dim,
            noise=args.noise,
            shortlist=args.shortlist,
            stripe_dtype=args.stripe_dtype,
            features_dir=args.features_dir,
            source=args.source,
        )


if __name__ == "__main__":
    main()
