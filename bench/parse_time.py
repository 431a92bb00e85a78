"""What parsing the workflow costs: ``snakemake -n`` on the demo DAG (every cluster job parses the
Snakefile again), and which heavy modules the parse-time imports load.

    .venv/bin/python bench/parse_time.py [--repeats 5] [WORKFLOW_DIR ...]

Each WORKFLOW_DIR (default: this checkout) is a copy of the workflow (Snakefile, config, workflow/,
src/, profiles/); its own src/ is imported (PYTHONPATH), so an older checkout (``git worktree add
/tmp/before <commit>``) can be measured beside this one in the same run. Prints the median and best
wall time of a dry run from an empty results/ and of one import of the modules the Snakefile reads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "pandas", "PIL", "tqdm", "scipy", "numba", "mindspore")


def _env(workflow: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(workflow / "src"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def parse_imports(workflow: Path) -> tuple[float, list[str]]:
    """Seconds to import what the Snakefile imports (read from its own import lines), and the heavy
    modules that loaded."""
    lines = [ln for ln in (workflow / "Snakefile").read_text().splitlines() if ln.startswith(("from alignedreid", "import alignedreid"))]
    common = workflow / "workflow" / "rules" / "common.smk"
    lines += [ln for ln in common.read_text().splitlines() if ln.startswith(("from alignedreid", "import alignedreid"))]
    code = "import sys, time; t = time.perf_counter()\n" + "\n".join(lines)
    code += f"\nprint(time.perf_counter() - t, ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env(workflow)).stdout.split()
    return float(out[0]), (out[1].split(",") if len(out) > 1 else [])


def dry_run(workflow: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:  # an empty results/: the whole DAG is planned
        t = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "snakemake"), "-n", "--cores", "2", "-s", str(workflow / "Snakefile"), "-d", tmp, "results/report.html",
             "--configfile", str(workflow / "config" / "config.yaml")],
            capture_output=True, text=True, check=True, env=_env(workflow), cwd=workflow,
        )  # fmt: skip
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workflows", nargs="*", type=Path, default=[REPO])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for wf in args.workflows:
        imports = [parse_imports(wf) for _ in range(args.repeats)]
        runs = [dry_run(wf) for _ in range(args.repeats)]
        heavy = imports[0][1]
        rows.append(
            [
                str(wf),
                f"{statistics.median(t for t, _ in imports):.2f} / {min(t for t, _ in imports):.2f}",
                ", ".join(heavy) or "none",
                f"{statistics.median(runs):.2f} / {min(runs):.2f}",
            ]
        )
    print_table(
        f"parse-time cost ({args.repeats} runs each, median / best s)",
        ["workflow", "parse-time imports s", "heavy modules loaded", "snakemake -n (demo DAG) s"],
        rows,
    )


if __name__ == "__main__":
    main()
