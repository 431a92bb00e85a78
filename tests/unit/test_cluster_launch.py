"""What the train job asks a cluster for, and the commands and checks of a launch inside a SLURM
allocation (the multi-node path cannot run on the one-node test cluster, so it is checked here)."""

import re
import subprocess
import sys

import pytest
import yaml

from alignedreid.config import resolve
from alignedreid.errors import ConfigError
from alignedreid.runlog import parse_run_location, run_location
from alignedreid.training.job import TrainJob
from alignedreid.training.launch import check_allocation, slurm_allocation, srun_node_command
from alignedreid.training.slurm_node import node_command
from tests.conftest import BIN, REPO, copy_workflow

SLURM_ENV = {
    "SLURM_JOB_ID": "42",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_NODEID": "1",
    "SLURM_JOB_NODELIST": "gpu01,gpu02",
    "SLURMD_NODENAME": "gpu02",
    "SLURM_JOB_PARTITION": "gpu",
    "SLURM_CPUS_PER_TASK": "16",
    "SLURM_GPUS_ON_NODE": "4",
}


def test_srun_starts_one_node_launcher_per_node(tmp_path):
    cmd = srun_node_command(2, tmp_path / "job.json")
    assert cmd[0] == "srun" and "--overlap" in cmd and "--nodes=2" in cmd and "--ntasks=2" in cmd and "--ntasks-per-node=1" in cmd
    assert cmd[-4:] == ["-m", "alignedreid.training.slurm_node", "--job", str(tmp_path / "job.json")] and cmd[-5] == sys.executable


def test_node_launcher_uses_slurm_rank_and_first_node_as_master(tmp_path):
    cfg = resolve({"train": {"device_num": 8, "nodes": 2, "master_port": 9000}})
    job = TrainJob.from_config(cfg, tmp_path / "train.csv", tmp_path)
    env = dict(SLURM_ENV, SLURM_JOB_NODELIST="gpu01,gpu02")
    cmd = node_command(job, tmp_path / "job.json", env)
    assert cmd[-1] == str(tmp_path / "job.json")
    assert "--worker_num=8" in cmd and "--local_worker_num=4" in cmd and "--node_rank=1" in cmd and "--master_port=9000" in cmd
    assert "--master_addr=gpu01" in cmd  # the first node of the allocation
    assert f"--log_dir={tmp_path}/msrun_logs/node1" in cmd
    with pytest.raises(ConfigError, match="SLURM_JOB_ID"):
        node_command(job, tmp_path / "job.json", {})


def train_section(**keys) -> dict:
    return resolve({"train": keys})["train"]


def test_allocation_checks_name_the_key():
    alloc = slurm_allocation(SLURM_ENV)
    assert alloc["nodes"] == 2 and alloc["node_rank"] == 1
    check_allocation(train_section(device_num=8, nodes=2, device_target="GPU"), alloc, SLURM_ENV)  # 4 GPUs per node: fits
    with pytest.raises(ConfigError, match=r"needs 8 GPUs per node, but SLURM job 42 has 4"):
        check_allocation(train_section(device_num=8, nodes=1, device_target="GPU"), alloc, SLURM_ENV)
    with pytest.raises(ConfigError, match=r"train.nodes = 4 needs a SLURM allocation of 4 nodes.*2 node\(s\)"):
        check_allocation(train_section(device_num=8, nodes=4), alloc, SLURM_ENV)
    with pytest.raises(ConfigError, match="no SLURM job"):
        check_allocation(train_section(device_num=4, nodes=2), None, {})
    with pytest.raises(ConfigError, match=r"device_num \(6\) must be a multiple of train.nodes \(4\)"):
        check_allocation(train_section(device_num=6, nodes=4), None, {})
    check_allocation(train_section(device_num=2, nodes=1, device_target="CPU"), None, {})  # local msrun needs nothing


def test_stage_log_line_names_the_slurm_job():
    assert run_location({}) == ""
    line = run_location(SLURM_ENV)
    assert line.startswith("running in SLURM job 42 on gpu02") and "partition gpu" in line and "cpus 16" in line
    assert parse_run_location("2026-01-01 INFO x: " + line) == ("42", "gpu02")  # what the report reads back
    assert parse_run_location("no scheduler here") is None


def _train_resources(tmp_path, train: dict) -> dict:
    """Resources Snakemake gives the train job for a config (from a dry run's job listing)."""
    d = copy_workflow(tmp_path / "repo")
    (d / "c.yaml").write_text(yaml.safe_dump({"train": train, "resources": {"train": {"mem_mb": 64000, "runtime": 2880}}}))
    out = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--cores", "2", "results/train/model.ckpt", "--configfile", "c.yaml"],
        cwd=d,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    block = out.split("rule train:")[1]
    line = re.search(r"^\s+resources: (.*)$", block, re.M).group(1)
    return dict(kv.split("=", 1) for kv in line.split(", "))


@pytest.mark.slow  # a snakemake dry run per case
@pytest.mark.parametrize(
    "train,expect,absent",
    [
        ({"device_target": "CPU", "device_num": 2}, {"nodes": "1", "devices": "2"}, ["gpu", "gres"]),
        ({"device_target": "GPU", "device_num": 8, "nodes": 2}, {"nodes": "2", "gpu": "4", "tasks_per_gpu": "0"}, ["gres"]),
        ({"device_target": "Ascend", "device_num": 8}, {"nodes": "1", "gres": "npu:8"}, ["gpu"]),
    ],
)
def test_train_job_requests_follow_the_config(tmp_path, train, expect, absent):
    res = _train_resources(tmp_path, train)
    assert res["mem_mb"] == "64000" and res["runtime"] == "2880"
    for k, v in expect.items():
        assert res.get(k) == v, (k, res)
    for k in absent:
        assert k not in res


def test_profile_is_site_only_and_valid_yaml():
    prof = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert prof["executor"] == "slurm" and prof["rerun-incomplete"] is True
    # sizes come from the pipeline config; the profile must not pin them per rule
    for rule, res in (prof.get("set-resources") or {}).items():
        assert not {"mem_mb", "runtime", "cpus_per_task"} & set(res), rule
    assert "set-threads" not in prof
