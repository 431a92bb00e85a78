"""What storing features in float16 costs (search.dtype float16, the feature store's half precision):
a run's query and gallery feature files evaluated as they are (float32) and rounded through float16,
every variant, with the mAP and rank-1 change in points (as the report shows INT8's).

  python bench/store_precision.py [--query results/features/cpp/query.npz]
      [--gallery results/features/cpp/gallery.npz] [--shortlist 200] [--threads 2]
  python bench/store_precision.py --synthetic   # Market-1501 shape, identity-structured features
      (bench/search_scale.py's generator, noise 3: mAP well below 100 %), where a trained model's
      features are not at hand

Evaluation is the pipeline's own (alignedreid.evaluation.run.evaluate_features) with the schema's
evaluation defaults; ``--shortlist`` sets evaluation.shortlist (null: exhaustive).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table  # noqa: E402
from int8 import isa_flags  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--query", type=Path, default=Path("results/features/cpp/query.npz"))
    ap.add_argument("--gallery", type=Path, default=Path("results/features/cpp/gallery.npz"))
    ap.add_argument("--shortlist", type=lambda v: None if v == "null" else int(v), default=200)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--synthetic", action="store_true", help="Market-1501-shaped synthetic features instead of files")
    args = ap.parse_args()

    from alignedreid.evaluation.run import evaluate_features
    from alignedreid.features.files import FeatureSet, load_features
    from alignedreid.foundation.config import section_defaults
    from alignedreid.foundation.contracts import VARIANTS
    from alignedreid.foundation.kernel_threads import limit_kernel_threads

    limit_kernel_threads(args.threads)
    cfg = {**section_defaults("evaluation"), "shortlist": args.shortlist}
    if args.synthetic:
        import search_scale

        z, proj = search_scale._latents(751), search_scale._projections()

        def as_set(n, seed, cameras):
            rng = np.random.default_rng(seed)
            pid = rng.integers(0, 751, n)
            g, loc = search_scale._images(pid, z, proj, seed=seed, noise=3.0)
            return FeatureSet(g, loc, pid + 1, rng.integers(*cameras, n), np.array([f"{i}.jpg" for i in range(n)]), np.arange(n))

        query, gallery = as_set(3368, 1, (0, 1)), as_set(15913, 2, (1, 6))  # queries from camera 0, gallery 1-5
    else:
        query, gallery = load_features(args.query), load_features(args.gallery)

    def half(f: FeatureSet) -> FeatureSet:
        return FeatureSet(*(a.astype(np.float16).astype(np.float32) for a in (f.global_, f.local)), f.pid, f.camid, f.path, f.row, f.sampled)

    results, seconds = {}, {}
    for name, (q, g) in {"float32": (query, gallery), "float16": (half(query), half(gallery))}.items():
        t = time.perf_counter()
        results[name] = evaluate_features(q, g, cfg, verification=False)[0]
        seconds[name] = time.perf_counter() - t
    rows = []
    for v in VARIANTS:
        if v not in results["float32"]:
            continue
        a, b = results["float32"][v], results["float16"][v]
        rows.append(
            [
                v,
                f"{100 * a['mAP']:.2f} / {100 * a['cmc'][0]:.2f}",
                f"{100 * b['mAP']:.2f} / {100 * b['cmc'][0]:.2f}",
                f"{100 * (b['mAP'] - a['mAP']):+.3f} / {100 * (b['cmc'][0] - a['cmc'][0]):+.3f}",
            ]
        )
    print_table(
        f"Features stored in float16: {len(query):,} queries x {len(gallery):,} gallery, stripes {query.local.shape[1]} x "
        f"{query.local.shape[2]}, evaluation.shortlist {args.shortlist}",
        ["variant", "float32 mAP / R1 %", "float16 mAP / R1 %", "change (points)"],
        rows,
    )
    print(f"\nevaluated in {seconds['float32']:.0f} s and {seconds['float16']:.0f} s; {os.cpu_count()} CPUs ({isa_flags()})")


if __name__ == "__main__":
    main()
