"""prepare_dataset at MSMT17's size (issue: more datasets). Prints a markdown table.

  python bench/prepare_msmt17.py [--work DIR] [--workers N]

Generates a synthetic dataset in the MSMT17 V1 layout with the release's exact counts (1,041
train identities / 32,621 train images incl. list_val, 3,060 test identities, 11,659 query,
82,161 gallery, 15 cameras; 126,441 images of 64x128 px) once (kept in --work, reused), then
times the stage itself on it as a user's release would be read (source msmt17): list files
parsed and checked, every image decoded, manifests written. Peak memory of this process.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measure, print_table  # noqa: E402

from alignedreid.data.prepare import prepare_dataset  # noqa: E402
from alignedreid.data.spec import SyntheticSpec  # noqa: E402
from alignedreid.data.synthetic import generate  # noqa: E402
from alignedreid.foundation.config import (
    resolve,  # noqa: E402
    section_defaults,  # noqa: E402
)

MSMT17 = dict(
    layout="msmt17",
    train_ids=1041,
    test_ids=3060,
    cameras=15,
    train_images=32621,
    query_images=11659,
    gallery_images=82161,
    queries_per_id=2,
    images_per_id=12,
    distractors=0,
    junk=0,
)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/msmt17_bench")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    work = Path(args.work)
    data = work / "release"
    rows = []
    if not (data / "MSMT17_V1" / "list_gallery.txt").is_file():
        t = time.perf_counter()
        generate(SyntheticSpec(**{**section_defaults("dataset")["synthetic"], **MSMT17}), data)
        rows.append(["generate the synthetic release (once)", f"{time.perf_counter() - t:.0f}", "-", "126,441 files"])
    cfg = resolve({"dataset": {"source": "msmt17", "root": str(data)}})["dataset"]
    out = work / "manifests"
    shutil.rmtree(out, ignore_errors=True)
    summary, dt, peak = measure(prepare_dataset, cfg, out, work_dir=work, workers=args.workers)
    n = sum(v["images"] for v in summary["splits"].values())
    rows.append(["prepare_dataset (source msmt17)", f"{dt:.0f}", f"{peak / 2**30:.2f}", f"{n:,} images, {n / dt:.0f} img/s"])
    print_table(
        f"prepare_dataset at MSMT17 size, {args.workers} decode threads (goal: <= 300 s, <= 2 GB)", ["step", "time s", "peak RSS GiB", "what"], rows
    )
    print({s: (v["images"], v["ids"], len(v["cameras"])) for s, v in summary["splits"].items()})


if __name__ == "__main__":
    main()
