"""One node's share of a multi-node msrun launch inside a SLURM job (started by ``srun`` once per
node): ``python -m alignedreid.training.slurm_node --job job.json`` runs msrun with this node's
rank, the first node of the allocation as master, and device_num / nodes local workers."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ..foundation.errors import ConfigError
from .job import TrainJob
from .launch import master_port, msrun_command, slurm_allocation


def node_command(job: TrainJob, job_file, env=None) -> list[str]:
    alloc = slurm_allocation(env)
    if alloc is None:
        raise ConfigError("alignedreid.training.slurm_node runs inside a SLURM job step (SLURM_JOB_ID is not set)")
    t = job.train
    log_dir = job.out_path / "msrun_logs" / f"node{alloc['node_rank']}"
    return msrun_command(
        t["device_num"], master_port(t, env), log_dir, Path(job_file).resolve(), alloc["nodes"], alloc["node_rank"], alloc["master_addr"]
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Start this node's msrun workers of a multi-node training")
    ap.add_argument("--job", required=True)
    args = ap.parse_args(argv)
    try:
        cmd = node_command(TrainJob.load(args.job), args.job)
    except ConfigError as e:
        print(f"slurm_node: {e}", file=sys.stderr)
        return 1
    print("slurm_node:", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
