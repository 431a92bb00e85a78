"""What the train job asks a cluster for, and the commands and checks of a launch inside a SLURM
allocation (the multi-node path cannot run on the one-node test cluster, so it is checked here)."""

import json
import sys

import pytest
import yaml

from alignedreid.foundation.config import resolve
from alignedreid.foundation.errors import ConfigError, PipelineError
from alignedreid.foundation.runlog import parse_run_location, run_location
from alignedreid.training.job import TrainJob
from alignedreid.training.launch import check_allocation, rank_table_jobs, run_training, slurm_allocation, srun_node_command
from alignedreid.training.slurm_node import node_command
from alignedreid.training.step import device_selection
from tests.conftest import REPO, copy_workflow, planned_resources

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
    config = {"train": train, "resources": {"train": {"mem_mb": 64000, "runtime": 2880}}}
    return planned_resources(copy_workflow(tmp_path / "repo"), "train", "results/train/model.ckpt", config)


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


def _rank_table(path, servers):
    """An HCCL rank table (format 1.0) with {server_id: [(device_id, rank_id), ...]}."""
    table = {
        "version": "1.0",
        "server_count": str(len(servers)),
        "server_list": [
            {"server_id": sid, "device": [{"device_id": str(d), "device_ip": f"192.98.92.{d}", "rank_id": str(r)} for d, r in devs]}
            for sid, devs in servers.items()
        ],
        "status": "completed",
    }
    path.write_text(json.dumps(table))
    return path


def test_rank_table_devices_come_from_the_table(tmp_path):
    table = _rank_table(tmp_path / "hccl_2p_45.json", {"10.0.0.1": [(4, 0), (5, 1)]})
    jobs = rank_table_jobs(2, table, tmp_path / "devices", tmp_path / "job.json", base_env={})
    assert [(e["DEVICE_ID"], e["RANK_ID"], e["RANK_SIZE"]) for _, e, _ in jobs] == [("4", "0", "2"), ("5", "1", "2")]
    assert [cwd.name for _, _, cwd in jobs] == ["device4", "device5"]
    assert all(e["RANK_TABLE_FILE"] == str(table.resolve()) and e["HCCL_CONNECT_TIMEOUT"] == "7200" for _, e, _ in jobs)
    with pytest.raises(ConfigError, match=r"lists 2 devices but train.device_num is 8"):
        rank_table_jobs(8, table, tmp_path, tmp_path / "job.json", base_env={})
    two = _rank_table(tmp_path / "hccl_4p.json", {"10.0.0.1": [(0, 0), (1, 1)], "10.0.0.2": [(0, 2), (1, 3)]})
    jobs = rank_table_jobs(4, two, tmp_path, tmp_path / "job.json", base_env={}, hosts={"10.0.0.2"})
    assert [(e["DEVICE_ID"], e["RANK_ID"], e["RANK_SIZE"]) for _, e, _ in jobs] == [("0", "2", "4"), ("1", "3", "4")]
    with pytest.raises(ConfigError, match=r"none \(or more than one\) is this host"):
        rank_table_jobs(4, two, tmp_path, tmp_path / "job.json", base_env={}, hosts={"192.168.1.1"})
    (tmp_path / "bad.json").write_text('{"server_list": [{"device": [{"device_id": "0"}]}]}')
    with pytest.raises(ConfigError, match=r"bad.json: not an HCCL rank table .*rank_id"):
        rank_table_jobs(1, tmp_path / "bad.json", tmp_path, tmp_path / "job.json", base_env={})


@pytest.mark.parametrize(
    "train,env,expect",
    [
        ({"device_target": "CPU"}, {"DEVICE_ID": "3"}, ("CPU", None)),
        ({"device_target": "CPU", "device_num": 2}, {}, ("CPU", None)),
        ({"device_target": "GPU", "device_id": 2}, {}, ("GPU", 2)),
        ({"device_target": "GPU", "device_id": 2}, {"DEVICE_ID": "5"}, ("GPU", 5)),
        ({"device_target": "GPU", "device_num": 8}, {}, ("GPU", None)),  # msrun: MindSpore picks the local rank's device
        ({"device_target": "GPU", "device_num": 8}, {"DEVICE_ID": "0"}, ("GPU", None)),
        ({"device_target": "Ascend", "device_num": 8}, {}, ("Ascend", None)),
        ({"device_target": "Ascend", "device_num": 8, "launcher": "rank_table", "rank_table_file": "t.json"}, {"DEVICE_ID": "6"}, ("Ascend", 6)),
        ({"device_target": "Ascend", "device_id": 1}, {}, ("Ascend", 1)),
    ],
)
def test_device_selection_per_target_and_launcher(train, env, expect):
    assert device_selection(train_section(**train), env)[:2] == expect


def test_rank_table_without_device_id_is_refused():
    t = train_section(device_target="Ascend", device_num=2, launcher="rank_table", rank_table_file="t.json")
    with pytest.raises(ConfigError, match="DEVICE_ID is not set"):
        device_selection(t, {})


@pytest.mark.slow  # two worker processes import MindSpore
def test_rank_table_launch_reaches_the_device(tmp_path, monkeypatch):
    """The rank-table launcher on this CPU host: two workers start in their device folders, find every
    input through relative paths (as Snakemake passes them), and stop where only the Ascend device is
    missing, with the device and the rank table's DEVICE_ID named."""
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "img").mkdir()
    Image.new("RGB", (64, 128), (90, 120, 200)).save(tmp_path / "img" / "0001_c1s1_000001_00.jpg")
    rows = "path,pid,camid\n" + "".join(f"img/0001_c1s1_000001_00.jpg,{p},{c}\n" for p in (1, 2) for c in (0, 1))
    (tmp_path / "data").mkdir()
    for split in ("train", "query", "gallery"):
        (tmp_path / "data" / f"{split}.csv").write_text(rows)
    table = _rank_table(tmp_path / "hccl_2p.json", {"127.0.0.1": [(4, 0), (5, 1)]})
    cfg = resolve(
        {
            "model": {"depth": 18, "height": 64, "width": 32},
            "train": {"device_target": "Ascend", "device_num": 2, "launcher": "rank_table", "rank_table_file": "hccl_2p.json", "batch_size": 4},
        }
    )
    job = TrainJob.from_config(cfg, "data/train.csv", "out", "data/query.csv", "data/gallery.csv")
    with pytest.raises(PipelineError, match=r"rank-table training failed on 2 device\(s\)") as err:
        run_training(job)
    for device in (4, 5):
        log = (tmp_path / "out" / "devices" / f"device{device}" / "log").read_text()
        assert "inputs found:" in log and "No such file" not in log and "FileNotFoundError" not in log, log[-3000:]
        assert f"MindSpore cannot use Ascend device {device} (DEVICE_ID from the rank table)" in log, log[-3000:]
        assert f"device{device}/log: " in str(err.value) and "cannot use Ascend device" in str(err.value), str(err.value)
    assert table.is_file()
