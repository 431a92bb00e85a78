"""Start training on one device in-process, or on N ranks: ``msrun`` (CPU/GPU/Ascend) or the
model zoo's HCCL rank-table launch (Ascend 910: one process per device folder with
RANK_TABLE_FILE, RANK_SIZE, RANK_ID, DEVICE_ID). Inside a SLURM job that spans several nodes,
``srun`` starts one msrun per node (``alignedreid.training.slurm_node``), each with its node rank. Command
and environment builders are pure functions so they can be checked without the hardware."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..foundation.cpu_runtime import apply_cpu_defaults
from ..foundation.errors import ConfigError, PipelineError
from .checkpoints import select_set
from .job import TrainJob

log = logging.getLogger(__name__)
HCCL_ENV = {"HCCL_CONNECT_TIMEOUT": "7200", "HCCL_EXEC_TIMEOUT": "3600"}


WORKER_SCRIPT = Path(__file__).resolve().parent / "worker.py"


def worker_argv(job_file: str | os.PathLike) -> list[str]:
    return [sys.executable, "-m", "alignedreid.training.worker", "--job", str(job_file)]


def master_port(tcfg: dict, env=None) -> int:
    """train.master_port, or when null: inside a SLURM job a port derived from the job id (every node
    computes the same one), else a port that is free on this host now."""
    env = os.environ if env is None else env
    if tcfg["master_port"]:
        return int(tcfg["master_port"])
    if env.get("SLURM_JOB_ID", "").isdigit():
        return 20000 + int(env["SLURM_JOB_ID"]) % 30000
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def msrun_executable() -> str:
    """msrun of this Python environment (it ships with MindSpore), else the one on PATH."""
    here = Path(sys.executable).parent / "msrun"
    return str(here) if here.is_file() else (shutil.which("msrun") or "msrun")


def msrun_command(
    n: int, master_port: int, log_dir: str | os.PathLike, job_file, nodes: int = 1, node_rank: int = 0, master_addr: str = "127.0.0.1"
) -> list[str]:
    """msrun command for ``n`` ranks over ``nodes`` nodes (this node: ``node_rank``)."""
    if n < 2:
        raise ConfigError(f"train.device_num: msrun needs at least 2 ranks, got {n}")
    if n % nodes:
        raise ConfigError(f"train.device_num ({n}) must be a multiple of the node count ({nodes})")
    return [
        msrun_executable(),
        f"--worker_num={n}",
        f"--local_worker_num={n // nodes}",
        f"--master_addr={master_addr}",
        f"--master_port={master_port}",
        f"--node_rank={node_rank}",
        f"--log_dir={log_dir}",
        "--join=True",
        "--cluster_time_out=600",
        str(WORKER_SCRIPT),  # msrun runs a script with its own python
        "--job",
        str(job_file),
    ]


def rank_table_devices(rank_table: str | os.PathLike, hosts: set[str] | None = None) -> tuple[list[dict], int]:
    """(this host's devices as {'device_id', 'rank_id'} ints, ranks in the whole table) of an HCCL
    rank table (format 1.0: server_list[].device[] with device_id, rank_id). With several servers,
    this host's entry is the one whose server_id is one of ``hosts`` (default: this host's names and
    addresses)."""
    rank_table = Path(rank_table)
    if not rank_table.is_file():
        raise ConfigError(f"train.rank_table_file: {rank_table} not found (an HCCL rank-table JSON is needed for launcher rank_table)")
    try:
        table = json.loads(rank_table.read_text())
        servers = table["server_list"]
        entries = [[{"device_id": int(d["device_id"]), "rank_id": int(d["rank_id"])} for d in srv["device"]] for srv in servers]
    except json.JSONDecodeError as e:
        raise ConfigError(f"{rank_table}: not valid JSON ({e})") from e
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(
            f"{rank_table}: not an HCCL rank table (expected server_list[].device[] with device_id and rank_id; {type(e).__name__}: {e})"
        ) from e
    total = sum(len(e) for e in entries)
    if len(servers) == 1:
        return entries[0], total
    hosts = hosts if hosts is not None else local_host_names()
    mine = [e for srv, e in zip(servers, entries) if str(srv.get("server_id")) in hosts]
    if len(mine) != 1:
        ids = [srv.get("server_id") for srv in servers]
        raise ConfigError(f"{rank_table}: lists servers {ids}; none (or more than one) is this host ({sorted(hosts)})")
    return mine[0], total


def local_host_names() -> set[str]:
    """This host's name and IPv4 addresses (to find its entry in a multi-server rank table)."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    try:
        names |= set(subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split())
    except (OSError, subprocess.SubprocessError):
        pass
    return names


def rank_table_jobs(n: int, rank_table: str | os.PathLike, base_dir: str | os.PathLike, job_file, base_env: dict | None = None, hosts=None):
    """One (argv, env, cwd) per Ascend device of this host, as the model zoo's run_train_ascend.sh:
    DEVICE_ID and RANK_ID from the rank table's own entries (a table for devices 4-7 starts ranks on
    4-7), RANK_SIZE the table's rank count, each worker in ``base_dir``/device<DEVICE_ID>."""
    devices, total = rank_table_devices(rank_table, hosts)
    if total != n:
        raise ConfigError(f"{rank_table}: lists {total} devices but train.device_num is {n}")
    jobs = []
    for d in devices:
        env = dict(base_env if base_env is not None else os.environ)
        env.update(HCCL_ENV)
        env.update(
            {
                "RANK_TABLE_FILE": str(Path(rank_table).resolve()),
                "RANK_SIZE": str(total),
                "RANK_ID": str(d["rank_id"]),
                "DEVICE_ID": str(d["device_id"]),
            }
        )
        jobs.append((worker_argv(Path(job_file).resolve()), env, Path(base_dir) / f"device{d['device_id']}"))
    return jobs


def srun_node_command(nodes: int, job_file) -> list[str]:
    """srun line that runs ``alignedreid.training.slurm_node`` once on each node of the current SLURM job
    (a step beside the one running this process, hence --overlap)."""
    return [
        "srun",
        "--overlap",
        f"--nodes={nodes}",
        f"--ntasks={nodes}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        sys.executable,
        "-m",
        "alignedreid.training.slurm_node",
        "--job",
        str(job_file),
    ]


def check_allocation(tcfg: dict, alloc: dict | None, env: dict | None = None) -> None:
    """Refuse a distributed launch that the SLURM allocation cannot hold (clear message instead of
    a hang in msrun's rendezvous): fewer nodes than train.nodes, or fewer GPUs per node than the
    ranks placed there."""
    env = env if env is not None else os.environ
    nodes, n = tcfg["nodes"], tcfg["device_num"]
    if n % nodes:
        raise ConfigError(f"train.device_num ({n}) must be a multiple of train.nodes ({nodes})")
    if nodes > 1 and (alloc is None or alloc["nodes"] < nodes):
        have = "no SLURM job" if alloc is None else f"SLURM job {alloc['job_id']} with {alloc['nodes']} node(s)"
        raise ConfigError(
            f"train.nodes = {nodes} needs a SLURM allocation of {nodes} nodes (run with the cluster profile); this process runs in {have}"
        )
    gpus = env.get("SLURM_GPUS_ON_NODE")
    if alloc is not None and tcfg["device_target"] == "GPU" and gpus and gpus.isdigit() and int(gpus) < n // nodes:
        raise ConfigError(
            f"train.device_num = {n} over {nodes} node(s) needs {n // nodes} GPUs per node, "
            f"but SLURM job {alloc['job_id']} has {gpus} (SLURM_GPUS_ON_NODE)"
        )


def slurm_allocation(env: dict | None = None) -> dict | None:
    """Node count, this node's rank and the first node's host inside a SLURM job, else None."""
    env = env if env is not None else os.environ
    if "SLURM_JOB_ID" not in env:
        return None
    nodes = int(env.get("SLURM_JOB_NUM_NODES", env.get("SLURM_NNODES", "1")))
    node_rank = int(env.get("SLURM_NODEID", "0"))
    master = "127.0.0.1"
    if nodes > 1 and env.get("SLURM_JOB_NODELIST"):
        try:
            master = subprocess.run(
                ["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        except (OSError, subprocess.CalledProcessError, IndexError):
            master = env["SLURM_JOB_NODELIST"].split(",")[0]
    return {"job_id": env["SLURM_JOB_ID"], "nodes": nodes, "node_rank": node_rank, "master_addr": master}


def _run_logged(argv, env, cwd: Path, log_file: Path) -> int:
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as fh:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT).wait()


def worker_env() -> dict:
    """Environment of worker processes: this package importable, this Python's tools first on PATH
    (msrun starts "python" from PATH), the CPU runtime defaults set."""
    env = dict(os.environ)
    apply_cpu_defaults(env)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


class RankLogFollower(threading.Thread):
    """Copies the progress lines of rank 0's own log into this stage's log while a distributed run
    goes on (the stage log would otherwise say nothing for days)."""

    PROGRESS = re.compile(r"epoch \d+/\d+|resuming|quick global eval|quick evaluation|rank \d+/\d+:|stalled|ERROR|Error")

    def __init__(self, path: Path, poll_s: float = 2.0):
        super().__init__(daemon=True)
        self.path, self.poll_s, self._done = Path(path), poll_s, threading.Event()

    def run(self):
        pos = 0
        while True:
            stopping = self._done.is_set()
            if self.path.is_file():
                with open(self.path, "rb") as fh:
                    fh.seek(pos)
                    for raw in fh:
                        if not (raw.endswith(b"\n") or stopping):
                            break  # a line still being written: read it whole next time
                        pos += len(raw)
                        line = raw.decode(errors="replace").rstrip()
                        if self.PROGRESS.search(line):
                            log.info("rank 0: %s", line[-300:])
            if stopping:
                return
            self._done.wait(self.poll_s)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self.join(timeout=10)


def launch_msrun(job: TrainJob, job_file: Path, env: dict) -> None:
    t = job.train
    check_allocation(t, slurm_allocation())
    log_dir = job.out_path / "msrun_logs"
    if t["nodes"] > 1:
        argv = srun_node_command(t["nodes"], job_file)
        rank0_log = log_dir / "node0" / "worker_0.log"
    else:
        argv = msrun_command(t["device_num"], master_port(t), log_dir, job_file)
        rank0_log = log_dir / "worker_0.log"
    log.info("launching: %s", " ".join(argv))
    with RankLogFollower(rank0_log):
        rc = _run_logged(argv, env, Path.cwd(), job.out_path / "msrun.log")
    if rc != 0:
        tails = "".join(f"\n--- {p}:\n" + "".join(open(p).readlines()[-30:]) for p in sorted(log_dir.rglob("worker_*.log")))
        raise PipelineError(f"msrun exited with status {rc}; worker logs in {log_dir}{tails}")


def last_error_line(log_file: Path) -> str:
    """The last line of a worker log that reports an error (else its last line)."""
    lines = [ln.strip() for ln in Path(log_file).read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "Error" in ln]
    line = (errors or lines or ["(empty log)"])[-1]
    return re.sub(r"^\S+ \S+ ERROR \S+: ", "", line)[:500]  # without the logging prefix


def launch_rank_table(job: TrainJob, job_file: Path, env: dict) -> None:
    t = job.train
    procs = []
    jobs = rank_table_jobs(t["device_num"], t["rank_table_file"] or "", job.out_path / "devices", job_file, env)
    for argv, jenv, cwd in jobs:
        cwd.mkdir(parents=True, exist_ok=True)
        fh = open(cwd / "log", "w")
        procs.append((subprocess.Popen(argv, env=jenv, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT), fh, cwd))
    rank0 = [cwd for _, jenv, cwd in jobs if jenv["RANK_ID"] == "0"]
    failed = []
    with RankLogFollower(rank0[0] / "log") if rank0 else contextlib.nullcontext():
        for p, fh, cwd in procs:
            if p.wait() != 0:
                failed.append(cwd / "log")
            fh.close()
    if failed:
        lines = "".join(f"\n  {f}: {last_error_line(f)}" for f in failed)
        raise PipelineError(f"rank-table training failed on {len(failed)} device(s):{lines}")


def run_training(job: TrainJob) -> dict:
    """Run ``job``: in this process on one device, else on train.device_num ranks with
    train.launcher. Epoch checkpoints go to the set of this run's fingerprint (resumed when it has
    some); every other set stays where it is."""
    job = job.with_provenance()
    job.out_path.mkdir(parents=True, exist_ok=True)
    _, message = select_set(job.sets_dir, job.fingerprint(), job.description())
    log.info("%s", message)
    if job.train["device_num"] == 1:
        from .worker import run_worker

        return run_worker(job)
    job_file = job.save(job.out_path / "job.json")
    env = worker_env()
    t0 = time.time()
    if job.train["launcher"] == "msrun":
        launch_msrun(job, job_file, env)
    else:
        launch_rank_table(job, job_file, env)
    log.info("distributed training finished in %.0f s", time.time() - t0)
    return json.loads((job.out_path / "train_summary.json").read_text())
