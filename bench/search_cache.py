"""The search feature cache at gallery scale (issue: users' own files): the cost of growing a cache
of N images by ``--add`` images, against extracting those images' features with the C++ program.

  python bench/search_cache.py [--size 126000] [--add 100] [--shard 10000] [--work /tmp/alignedreid-cache-bench]

The cache is filled with synthetic features (Market-1501's 2048-d global, 8 x 2048-d stripes,
float32) in shards of ``--shard`` images, as search_features writes them. Measured: opening the
cache (every shard's index, memory-mapped), writing one shard of ``--add`` images, gathering the
features of the ``--add`` images, and the bytes written. The extraction time to compare with is the
C++ program's on the same number of images (bench/search.py measures it: ~30 images/s fp32 at
256x128 on 2 cores, so 100 images ~3.3 s).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, print_table  # noqa: E402
from int8 import isa_flags  # noqa: E402

from alignedreid.search.cache import cache_index, gather_rows, write_shard  # noqa: E402


def _keys(start: int, n: int) -> list[str]:
    return [f"{i:064x}" for i in range(start, start + n)]


def _fill(root: Path, size: int, shard: int) -> float:
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    for start in range(0, size, shard):
        n = min(shard, size - start)
        g = rng.standard_normal((n, 2048), dtype=np.float32)
        loc = rng.standard_normal((n, 8, 2048), dtype=np.float32)
        write_shard(root, _keys(start, n), g, loc)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=126000)
    ap.add_argument("--add", type=int, default=100)
    ap.add_argument("--shard", type=int, default=10000)
    ap.add_argument("--work", default="/tmp/alignedreid-cache-bench")
    args = ap.parse_args()
    root = Path(args.work) / "cache" / "model"
    shutil.rmtree(args.work, ignore_errors=True)
    fill_s = _fill(root, args.size, args.shard)
    disk = sum(f.stat().st_size for f in root.rglob("*.npy"))
    rng = np.random.default_rng(1)
    new_g = rng.standard_normal((args.add, 2048), dtype=np.float32)
    new_l = rng.standard_normal((args.add, 8, 2048), dtype=np.float32)
    with PeakRSS() as rss:
        t0 = time.perf_counter()
        index = cache_index(root)
        t_index = time.perf_counter() - t0
        t0 = time.perf_counter()
        shard = write_shard(root, _keys(args.size, args.add), new_g, new_l)
        t_write = time.perf_counter() - t0
        index = cache_index(root)
        t0 = time.perf_counter()
        g, loc = gather_rows(index, _keys(args.size, args.add))
        t_gather = time.perf_counter() - t0
    assert np.array_equal(g, new_g) and np.array_equal(loc, new_l) and len(index) == args.size + args.add
    written = sum(f.stat().st_size for f in shard.iterdir())
    print(f"CPU ISA flags: {isa_flags()}")
    print_table(
        f"Growing a {args.size:,}-image search cache ({disk / 1e9:.1f} GB in {-(-args.size // args.shard)} shards, filled in {fill_s:.0f} s) by {args.add}",
        ["step", "seconds", "note"],
        [
            ["open the cache (every shard's index, memory-mapped)", f"{t_index:.2f}", f"{len(index):,} entries"],
            [f"write one shard of {args.add}", f"{t_write:.2f}", f"{written / 1e6:.1f} MB written (no other shard touched)"],
            [f"gather the {args.add} new rows", f"{t_gather:.3f}", ""],
            ["peak RSS of the three", f"{rss.peak / 2**20:.0f} MiB", ""],
        ],
    )
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
