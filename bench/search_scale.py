"""Search at gallery scale (issue: beyond one machine): synthetic features written straight into a
feature store (alignedreid.features.store), then a batch of queries ranked by the two-stage search
over the streamed store (alignedreid.search.streaming), at several gallery sizes.

  python bench/search_scale.py [--sizes 20000 126000 1000000] [--queries 1000] [--top-k 10]
      [--shortlist 200] [--dtype float16] [--check-gallery 100000] [--check-queries 100]
      [--work /tmp/alignedreid-search-scale] [--keep] [--serial-reads]

Features: 2048-d global and 8 x 2048 stripes (ResNet-50 at 256x128), clustered by identity (about 6
images each) and projected from one 64-d latent per identity, global and stripes alike, as a trained
model's are. Per size it prints: the store's build time and disk size, the search's queries/s and
peak RSS (in a fresh process, as the search rule runs; its block buffers, not the page cache), the
top-k agreement with the exhaustive global + local ranking on the first ``--check-gallery`` images
for ``--check-queries`` queries (searched again against that subset), how many queries the bound
proves exact, and the time to append 1,000 images to the store.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gemm_rate, print_table  # noqa: E402
from int8 import isa_flags  # noqa: E402

GLOBAL, STRIPES, DIM, LATENT, PER_ID = 2048, 8, 2048, 64, 6
BUILD_ROWS = 8192


def _projections():
    rng = np.random.default_rng(7)
    scale = np.float32(1 / np.sqrt(LATENT))
    return (rng.standard_normal((LATENT, GLOBAL), np.float32) * scale, rng.standard_normal((LATENT, STRIPES * DIM), np.float32) * scale)


def _latents(n_ids: int) -> np.ndarray:
    return np.random.default_rng(11).standard_normal((n_ids, LATENT), np.float32)


def _images(ids: np.ndarray, z: np.ndarray, proj, seed: int, noise: float = 0.7):
    """Global [n, 2048] and stripes [n, 8, 2048] of images of identities ``ids``."""
    rng = np.random.default_rng(seed)
    pg, pl = proj
    g = z[ids] @ pg
    g += noise * rng.standard_normal(g.shape, np.float32)
    loc = z[ids] @ pl
    loc += noise * rng.standard_normal(loc.shape, np.float32)
    return g, loc.reshape(len(ids), STRIPES, DIM)


def build(root: Path, n: int, dtype: str) -> tuple[float, int]:
    """The store of ``n`` images (reused when complete): (seconds to build, bytes on disk)."""
    from alignedreid.features.store import FeatureStore

    if (root / "store.json").is_file() and len(FeatureStore(root)) == n:
        return float(json.loads((root / "built.json").read_text())["seconds"]), FeatureStore(root).disk_bytes()
    shutil.rmtree(root, ignore_errors=True)
    store = FeatureStore.create(root, GLOBAL, STRIPES, DIM, dtype)
    z, proj = _latents(-(-n // PER_ID)), _projections()
    t = time.perf_counter()
    for s in range(0, n, BUILD_ROWS):
        ids = np.arange(s, min(n, s + BUILD_ROWS)) // PER_ID
        g, loc = _images(ids, z, proj, seed=s)
        store.append([f"{i:08d}" for i in range(s, s + len(ids))], g, loc)
        if s // BUILD_ROWS % 16 == 0:
            print(f"  building {root.name}: {s + len(ids):,}/{n:,} images, {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t
    (root / "built.json").write_text(json.dumps({"seconds": seconds}))
    return seconds, store.disk_bytes()


def queries(n_gallery: int, count: int):
    """``count`` queries of identities in the gallery (their own noise)."""
    n_ids = -(-n_gallery // PER_ID)
    ids = np.random.default_rng(3).choice(n_ids, size=count, replace=False)
    return _images(ids, _latents(n_ids), _projections(), seed=10**9)


class Prefix:
    """The first ``n`` rows of a store, as a gallery (the exhaustive check's subset)."""

    def __init__(self, store, n):
        self.store, self.n = store, n

    def __len__(self):
        return self.n

    def global_blocks(self, rows):
        for s in range(0, self.n, rows):
            yield s, self.store.read_rows("global", s, min(self.n, s + rows))

    def gather(self, which, rows, as_stored=False):
        return self.store.gather(which, rows, as_stored)


def _search(root: str, n_gallery: int, count: int, top_k: int, shortlist: int, limit: int, out: str, read_threads: int) -> None:
    """In a fresh process: open the store, rank ``count`` queries; times, peak RSS and the answer to ``out``."""
    from alignedreid.features import store as store_module
    from alignedreid.features.store import FeatureStore
    from alignedreid.foundation.kernel_threads import limit_kernel_threads
    from alignedreid.foundation.runlog import peak_rss_gib
    from alignedreid.search.streaming import two_stage_top_k

    limit_kernel_threads(os.cpu_count() or 1)
    store_module.READ_THREADS = read_threads
    qg, ql = queries(n_gallery, count)
    t = time.perf_counter()
    store = FeatureStore(root)
    gallery = Prefix(store, limit) if limit < len(store) else store
    rows, dist, stats = two_stage_top_k(qg, ql, gallery, top_k, shortlist)
    seconds = time.perf_counter() - t
    np.save(out + ".rows.npy", rows)
    Path(out).write_text(json.dumps({"seconds": seconds, "rss_gb": peak_rss_gib(), **stats}))


def run_search(
    root: Path, n_gallery: int, count: int, top_k: int, shortlist: int, limit: int, work: Path, read_threads: int = 16
) -> tuple[dict, np.ndarray]:
    out = str(work / f"search-{n_gallery}-{limit}.json")
    p = mp.get_context("spawn").Process(target=_search, args=(str(root), n_gallery, count, top_k, shortlist, limit, out, read_threads))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"search of {root} failed (exit {p.exitcode})")
    return json.loads(Path(out).read_text()), np.load(out + ".rows.npy")


def exhaustive(store, limit: int, qg, ql, top_k: int) -> np.ndarray:
    """Top-k rows by the exhaustive global + local distance over the first ``limit`` rows (in blocks)."""
    from alignedreid.evaluation.distance import global_distance
    from alignedreid.evaluation.local import local_distance
    from alignedreid.search.streaming import unit_stripes

    ql = unit_stripes(np.array(ql, np.float32))
    d = np.empty((len(qg), limit), np.float32)
    for s in range(0, limit, 8192):
        e = min(limit, s + 8192)
        d[:, s:e] = global_distance(qg, store.read_rows("global", s, e)) + local_distance(ql, unit_stripes(store.read_rows("local", s, e)))
    return np.lexsort((np.broadcast_to(np.arange(limit), d.shape), d), axis=1)[:, :top_k]


def append_time(store, count: int = 1000) -> float:
    """Seconds to append ``count`` images (the part is removed afterwards: the bench's store stays as built)."""
    g, loc = _images(np.arange(count), _latents(count), _projections(), seed=5)
    t = time.perf_counter()
    part = store.append([f"new-{i}" for i in range(count)], g, loc)
    seconds = time.perf_counter() - t
    shutil.rmtree(part)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000, 126000, 1000000])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--shortlist", type=int, default=200)
    ap.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    ap.add_argument("--check-gallery", type=int, default=100000)
    ap.add_argument("--check-queries", type=int, default=100)
    ap.add_argument("--work", type=Path, default=Path("/tmp/alignedreid-search-scale"))
    ap.add_argument(
        "--serial-reads", action="store_true", help="also time the search with one read in flight (the local stage's speed-up from parallel reads)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the stores (reused by the next run)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    from alignedreid.features.store import FeatureStore

    rows, serial_rows = [], []
    for n in args.sizes:
        root = args.work / f"store-{n}-{args.dtype}"
        build_s, disk = build(root, n, args.dtype)
        result, top = run_search(root, n, args.queries, args.top_k, args.shortlist, n, args.work)
        limit = min(n, args.check_gallery)
        check_q = min(args.check_queries, args.queries)
        # the same queries against the subset (the full gallery's answer is exhaustive's only where the subset is the whole)
        sub, sub_top = (result, top) if limit == n else run_search(root, n, args.queries, args.top_k, args.shortlist, limit, args.work)
        qg, ql = queries(n, args.queries)
        want = exhaustive(FeatureStore(root), limit, qg[:check_q], ql[:check_q], args.top_k)
        agree = float(np.mean([np.array_equal(a, b) for a, b in zip(sub_top[:check_q], want)]))
        append_s = append_time(FeatureStore(root))
        if args.serial_reads:  # the same search with one read in flight at a time (the store's reads before threads)
            serial, _ = run_search(root, n, args.queries, args.top_k, args.shortlist, n, args.work, read_threads=1)
            serial_rows.append([f"{n:,}", f"{serial['local_s']:.1f}", f"{result['local_s']:.1f}", f"{serial['local_s'] / result['local_s']:.2f}x"])
        rows.append(
            [
                f"{n:,}",
                f"{build_s:.0f}",
                f"{disk / 2**30:.2f}",
                f"{args.queries / result['seconds']:.1f}",
                f"{result['global_s']:.1f} / {result['local_s']:.1f}",
                f"{result['rss_gb']:.2f}",
                f"{agree * 100:.1f}% ({check_q} q x {limit:,})",
                f"{result['certain']}/{result['queries']}",
                f"{append_s:.2f}",
            ]
        )
        print_table(
            f"Search over a feature store: {args.queries} queries, top-{args.top_k}, shortlist {args.shortlist}, {STRIPES} x {DIM} stripes in {args.dtype}",
            ["gallery", "build s", "disk GB", "queries/s", "global / local s", "peak RSS GiB", "top-k = exhaustive", "certain", "append 1,000 s"],
            rows,
        )
        if serial_rows:
            print_table(
                "Local stage (scattered stripe reads): one read in flight vs READ_THREADS",
                ["gallery", "1 thread s", "16 threads s", "speed-up"],
                serial_rows,
            )
        if not args.keep:
            shutil.rmtree(root)
    print(f"\n{os.cpu_count()} CPUs ({isa_flags()}), float32 GEMM {gemm_rate() / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
