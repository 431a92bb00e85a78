"""One node's share of a multi-node msrun launch inside a SLURM job (started by ``srun`` once per
node): ``python -m alignedreid.train_node --job job.json`` runs msrun with this node's rank, the
first node of the allocation as master, and device_num / nodes local workers."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from .errors import ConfigError
from .launch import msrun_command, slurm_allocation


def node_command(job: dict, env=None) -> list[str]:
    alloc = slurm_allocation(env)
    if alloc is None:
        raise ConfigError("alignedreid.train_node runs inside a SLURM job step (SLURM_JOB_ID is not set)")
    t = job["train"]
    log_dir = Path(job["out_dir"]) / "msrun_logs" / f"node{alloc['node_rank']}"
    return msrun_command(t["device_num"], t.get("master_port", 8118), log_dir, job["_job_file"], alloc["nodes"],
                         alloc["node_rank"], alloc["master_addr"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Start this node's msrun workers of a multi-node training")
    ap.add_argument("--job", required=True)
    args = ap.parse_args(argv)
    job = json.loads(Path(args.job).read_text())
    job["_job_file"] = str(Path(args.job).resolve())
    try:
        cmd = node_command(job)
    except ConfigError as e:
        print(f"train_node: {e}", file=sys.stderr)
        return 1
    print("train_node:", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
