"""Real training runs: interruption and resume, and 2-rank data-parallel training with msrun on CPU."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mindspore as ms
import numpy as np
import pandas as pd
import pytest

from alignedreid.data.prepare import prepare_dataset
from alignedreid.foundation.config import resolve
from alignedreid.foundation.errors import ConfigError
from alignedreid.training.job import TrainJob
from alignedreid.training.launch import msrun_command, rank_table_jobs
from tests.conftest import dataset_section

pytestmark = pytest.mark.workflow

SMALL = {"seed": 2, "train_ids": 8, "test_ids": 2, "images_per_id": 4, "cameras": 3, "queries_per_id": 1, "distractors": 0, "junk": 0}


def job(tmp_path, epochs, **train):
    data = tmp_path / "data"
    if not (data / "train.csv").exists():
        prepare_dataset(dataset_section({"source": "synthetic", "synthetic": SMALL}), data, work_dir=data)
    t = {
        "device_target": "CPU",
        "epochs": epochs,
        "batch_size": 8,
        "num_instances": 4,
        "lr_max": 0.01,
        "warmup_epochs": 1,
        "quick_eval": False,
        "save_every": 1,
        "data_workers": 1,
        **train,
    }
    cfg = resolve({"model": {"depth": 18, "height": 64, "width": 32}, "train": t})
    return TrainJob.from_config(cfg, data / "train.csv", tmp_path / "train")


def run_job_process(j, log_file):
    job_file = j.save(Path(log_file).with_suffix(".job.json"))
    code = (
        "import sys,logging; logging.basicConfig(level=logging.INFO); from alignedreid.training.job import TrainJob; "
        "from alignedreid.training.launch import run_training; run_training(TrainJob.load(sys.argv[1]))"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(job_file)], stdout=open(log_file, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def test_killed_training_resumes(tmp_path):
    j = job(tmp_path, epochs=4)
    ckpts = tmp_path / "train" / "checkpoints"
    p = run_job_process(j, tmp_path / "first.log")
    deadline = time.time() + 600
    while time.time() < deadline and not list(ckpts.glob("*/epoch_0002.ckpt")):
        assert p.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(1)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "train" / "model.ckpt").exists()
    p2 = run_job_process(j, tmp_path / "second.log")
    assert p2.wait(timeout=900) == 0, (tmp_path / "second.log").read_text()[-3000:]
    log = (tmp_path / "second.log").read_text()
    m = __import__("re").search(r"resuming after epoch (\d+)", log)
    assert m and int(m.group(1)) >= 2
    steps = pd.read_csv(tmp_path / "train" / "log.csv")
    assert sorted(steps.epoch.unique()) == [1, 2, 3, 4]
    assert not steps.duplicated(["epoch", "step"]).any()
    summary = json.loads((tmp_path / "train" / "train_summary.json").read_text())
    assert summary["resumed_from_epoch"] >= 2 and summary["epochs"] == 4
    assert len(list(ckpts.glob("*/epoch_*.ckpt"))) <= 5


def test_msrun_two_ranks_end_with_identical_weights(tmp_path):
    j = job(tmp_path, epochs=1, device_num=2, launcher="msrun", master_port=8000 + os.getpid() % 1000, keep_checkpoints=1)
    p = run_job_process(j, tmp_path / "msrun.log")
    assert p.wait(timeout=1200) == 0, (tmp_path / "msrun.log").read_text()[-4000:]
    weights = []
    for rank in (0, 1):
        f = tmp_path / "train" / f"rank_{rank}_final.ckpt"
        assert f.is_file(), f"rank {rank} wrote no final weights"
        weights.append(ms.load_checkpoint(str(f)))
    assert weights[0].keys() == weights[1].keys()
    for k in weights[0]:
        if "moving_" in k:  # BatchNorm statistics are per rank (no sync-BN), as the recipe
            continue
        np.testing.assert_array_equal(weights[0][k].asnumpy(), weights[1][k].asnumpy(), err_msg=k)
    assert (tmp_path / "train" / "model.ckpt").is_file()


def test_generated_launch_commands(tmp_path):
    cmd = msrun_command(8, 8118, tmp_path / "logs", tmp_path / "job.json")
    assert "--worker_num=8" in cmd and "--local_worker_num=8" in cmd and "--master_port=8118" in cmd
    assert cmd[-3].endswith("alignedreid/training/worker.py") and cmd[-2:] == ["--job", str(tmp_path / "job.json")]
    two_nodes = msrun_command(16, 8118, tmp_path, "j.json", nodes=2, node_rank=1, master_addr="node01")
    assert "--local_worker_num=8" in two_nodes and "--node_rank=1" in two_nodes and "--master_addr=node01" in two_nodes
    table = tmp_path / "rank_table_8pcs.json"
    table.write_text(
        json.dumps(
            {
                "version": "1.0",
                "server_count": "1",
                "server_list": [
                    {"server_id": "10.0.0.1", "device": [{"device_id": str(i), "device_ip": f"192.168.100.{i}", "rank_id": str(i)} for i in range(8)]}
                ],
            }
        )
    )
    jobs = rank_table_jobs(8, table, tmp_path / "devices", tmp_path / "job.json", base_env={"PATH": "/usr/bin"})
    assert len(jobs) == 8
    for i, (argv, env, cwd) in enumerate(jobs):
        assert env["RANK_SIZE"] == "8" and env["RANK_ID"] == str(i) and env["DEVICE_ID"] == str(i)
        assert env["RANK_TABLE_FILE"] == str(table.resolve())
        assert env["HCCL_CONNECT_TIMEOUT"] == "7200" and env["HCCL_EXEC_TIMEOUT"] == "3600"
        assert cwd.name == f"device{i}" and argv[-1].endswith("job.json")
    with pytest.raises(ConfigError, match="lists 8 devices but train.device_num is 4"):
        rank_table_jobs(4, table, tmp_path, "j.json")
    with pytest.raises(ConfigError, match=r"train.rank_table_file: .*missing.json not found"):
        rank_table_jobs(8, tmp_path / "missing.json", tmp_path, "j.json")
