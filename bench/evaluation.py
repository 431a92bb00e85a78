"""Benchmark of the evaluation stage (issue: evaluation). Prints markdown tables.

  python bench/evaluation.py --part market    # 3,368 x 15,913, 8x2048-d stripes (minutes)
  python bench/evaluation.py --part market128 # same with 8x128-d stripes
  python bench/evaluation.py --part small     # 1,000 x 5,000 vs straightforward implementations
  python bench/evaluation.py --part all
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
    flops = {"local q-g": 2.0 * nq * m * ng * m * stripes_dim, "local q-q": 2.0 * nq * m * nq * m * stripes_dim / 2,
             "local g-g": 2.0 * ng * m * ng * m * stripes_dim / 2}
    total_t, total_floor, peak = 0.0, 0.0, 0

    def step(name, fn, *a, **kw):
        nonlocal total_t, total_floor, peak
        out, dt, pk = measure(fn, *a, **kw)
        fl = flops.get(name, 0.0)
        floor = fl / rate
        total_t += dt
        total_floor += floor
        peak = max(peak, pk)
        rows.append([name, f"{dt:.1f}", f"{fl / 1e12:.2f}" if fl else "-", f"{floor:.1f}" if fl else "-",
                     f"{dt / floor:.2f}" if fl else "-", f"{pk / 2**30:.2f}"])
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
    rows.append(["**total**", f"{total_t:.1f}", f"{sum(flops.values()) / 1e12:.2f}", f"{total_floor:.1f}",
                 f"{total_t / total_floor:.2f}", f"{peak / 2**30:.2f}"])
    print_table(f"Market scale: {nq} x {ng}, 8x{stripes_dim}-d stripes, GEMM rate {rate / 1e9:.0f} GFLOP/s",
                ["part", "time s", "TFLOP", "floor s", "time/floor", "peak RSS GiB"], rows)


# ---- straightforward implementations for comparison (as in the published reference code)
def naive_local_distance(x, y):
    M, m, d = x.shape
    N, n, _ = y.shape
    xf, yf = x.reshape(-1, d).astype(np.float64), y.reshape(-1, d).astype(np.float64)
    sq = (xf ** 2).sum(1)[:, None] + (yf ** 2).sum(1)[None] - 2 * xf @ yf.T
    dist = np.sqrt(np.clip(sq, 0, None))
    dist = (np.exp(dist) - 1.0) / (np.exp(dist) + 1.0)
    dist = dist.reshape(M, m, N, n).transpose(1, 3, 0, 2)
    acc = np.zeros_like(dist)
    for a in range(m):
        for b in range(n):
            if a == 0 and b == 0:
                acc[a, b] = dist[a, b]
            elif a == 0:
                acc[a, b] = acc[a, b - 1] + dist[a, b]
            elif b == 0:
                acc[a, b] = acc[a - 1, b] + dist[a, b]
            else:
                acc[a, b] = np.minimum(acc[a - 1, b], acc[a, b - 1]) + dist[a, b]
    return acc[-1, -1]


def naive_re_ranking(q_g, q_q, g_g, k1=20, k2=6, lam=0.3):
    nq = q_g.shape[0]
    orig = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32) ** 2
    orig = (orig / orig.max(axis=0)).T
    n = len(orig)
    V = np.zeros_like(orig)
    ranking = np.argsort(orig, axis=1, kind="stable").astype(np.int32)  # stable: ties by index, as ours
    kh = int(np.around(k1 / 2.0))

    def recip(i, k):
        fwd = ranking[i, : k + 1]
        return fwd[np.where(ranking[fwd, : k + 1] == i)[0]]

    for i in range(n):
        r = recip(i, k1)
        exp = r
        for c in r:
            rc = recip(c, kh)
            if len(np.intersect1d(rc, r)) > 2.0 / 3.0 * len(rc):
                exp = np.append(exp, rc)
        exp = np.unique(exp)
        w = np.exp(-orig[i, exp])
        V[i, exp] = w / w.sum()
    V = np.stack([V[ranking[i, :k2]].mean(0) for i in range(n)])
    inv = [np.where(V[:, j] != 0)[0] for j in range(n)]
    jac = np.zeros((nq, n), np.float32)
    for i in range(nq):
        tmp = np.zeros(n, np.float32)
        nz = np.where(V[i] != 0)[0]
        for j in nz:
            tmp[inv[j]] += np.minimum(V[i, j], V[inv[j], j])
        jac[i] = 1 - tmp / (2 - tmp)
    return (jac * (1 - lam) + orig[:nq] * lam)[:, nq:]


def small():
    nq, ng = 1000, 5000
    q, g = make_features(nq, ng, 8, 128, seed=1)
    rows = []
    fast_l, tf, _ = measure(local_distance, q[1], g[1])
    slow_l, ts, _ = measure(naive_local_distance, q[1], g[1])
    rows.append(["local_distance q-g", f"{ts:.2f}", f"{tf:.2f}", f"{ts / tf:.1f}x", f"{np.abs(fast_l - slow_l).max():.1e}"])
    d_qg = np.sqrt(global_distance(q[0], g[0]))
    d_qq = np.sqrt(global_distance(q[0], q[0]))
    d_gg = np.sqrt(global_distance(g[0], g[0]))
    fast_r, tf, _ = measure(re_ranking, d_qg, d_qq, d_gg)
    slow_r, ts, _ = measure(naive_re_ranking, d_qg, d_qq, d_gg)
    rows.append(["re_ranking", f"{ts:.2f}", f"{tf:.2f}", f"{ts / tf:.1f}x", f"{np.abs(fast_r - slow_r).max():.1e}"])
    print_table(f"{nq} x {ng}, 8x128-d stripes: this package vs straightforward NumPy",
                ["part", "straightforward s", "ours s", "speed-up", "max |diff|"], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["market", "market128", "small", "all"], default="all")
    args = ap.parse_args()
    local_distance(np.ones((2, 2, 4), np.float32), np.ones((2, 2, 4), np.float32))  # compile the kernel
    rate = gemm_rate()
    print(f"float32 GEMM rate on this machine: {rate / 1e9:.1f} GFLOP/s")
    if args.part in ("small", "all"):
        small()
    if args.part in ("market128", "all"):
        market(128, rate)
    if args.part in ("market", "all"):
        market(2048, rate)


if __name__ == "__main__":
    main()
