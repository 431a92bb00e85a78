"""Paths users take on hardware this machine lacks, run as far as a CPU host allows: the device
check's message, the msrun port, rank 0's progress in the stage log, the quick evaluation's subset,
a download cache shared by two runs, and evaluation that never loads unused stripes."""

import json
import logging
import threading
import time

import numpy as np
import pandas as pd
import pytest

from alignedreid.evaluation.run import needs_local
from alignedreid.features.files import load_features, save_features
from alignedreid.foundation.config import resolve
from alignedreid.foundation.download import download
from alignedreid.foundation.errors import DeviceError
from alignedreid.training.device_check import check_device, found_on_host, mindspore_error
from alignedreid.training.launch import RankLogFollower, master_port
from alignedreid.training.quick_eval import QUICK_EVAL_DISTRACTING, QUICK_EVAL_QUERIES, quick_eval_subset


@pytest.mark.parametrize("target", ["GPU", "Ascend"])
def test_device_check_names_what_is_needed_and_found(tmp_path, target):
    """MindSpore really tries the device in a child process; on this CPU-only host it cannot."""
    out = tmp_path / "check.json"
    with pytest.raises(DeviceError) as err:
        check_device(target, 0, out)
    msg = str(err.value)
    assert msg.startswith(f"train.device_target {target}: MindSpore cannot compute on {target} device 0 (RuntimeError: Unsupported device target")
    assert "Needed: MindSpore 2.10's" in msg and "Found on this host:" in msg and "set train.device_target: CPU" in msg
    if target == "GPU":
        assert "CUDA 11.1 or 11.6 and cuDNN 8" in msg and "nvidia-smi" in msg and "cuDNN:" in msg
    else:
        assert "CANN" in msg and "npu-smi: " in msg and "ASCEND_OPP_PATH: " in msg
    assert not out.exists()  # nothing written: the rules after it do not start


def test_device_check_on_cpu_writes_its_result(tmp_path):
    assert check_device("CPU", 0, tmp_path / "c.json")["ok"] and json.loads((tmp_path / "c.json").read_text())["target"] == "CPU"


def test_found_on_host_lists_cuda_libraries(tmp_path):
    for name in ("libcudart.so.12", "libcudnn.so.9", "libcublas.so.12", "libz.so.1"):
        (tmp_path / name).write_bytes(b"")
    found = found_on_host("GPU", {"LD_LIBRARY_PATH": str(tmp_path), "CUDA_HOME": "/usr/local/cuda-12.4"})
    assert "libcudart.so.12" in found["CUDA runtime"] and "libcudnn.so.9" in found["cuDNN"] and "libcublas.so.12" in found["cuBLAS"]
    assert found["CUDA_HOME"] == "/usr/local/cuda-12.4"
    assert found_on_host("Ascend", {})["ASCEND_HOME_PATH"] == "unset"


def test_mindspore_error_is_the_exception_line():
    stderr = "[WARNING] ME(1):x\nTraceback (most recent call last):\n  File x\nRuntimeError: Unsupported device target GPU.\n\n- C++ Call Stack:\n"
    assert mindspore_error(stderr) == "RuntimeError: Unsupported device target GPU."


def test_master_port_free_or_from_the_slurm_job():
    t = resolve({})["train"]
    assert t["master_port"] is None
    assert master_port({**t, "master_port": 9123}, {}) == 9123
    assert master_port(t, {"SLURM_JOB_ID": "123456"}) == master_port(t, {"SLURM_JOB_ID": "123456"}) == 20000 + 123456 % 30000
    a, b = master_port(t, {}), master_port(t, {})
    assert 1024 <= a <= 65535 and 1024 <= b <= 65535


def test_rank_zero_progress_reaches_the_stage_log(tmp_path, caplog):
    worker_log = tmp_path / "worker_0.log"
    with caplog.at_level(logging.INFO, logger="alignedreid.training.launch"):
        with RankLogFollower(worker_log, poll_s=0.02):
            time.sleep(0.1)  # the worker has not written its log yet
            with open(worker_log, "w") as fh:
                fh.write("2026 INFO loop: rank 0/8: 751 classes, 50 steps/epoch\n[WARNING] noise\n")
                fh.flush()
                time.sleep(0.1)
                fh.write("2026 INFO loop: epoch 1/300 loss 9.1 (id 6.6 tri 1.3 local 1.2) lr 1e-3 25 img/s 80 s\n2026 INFO loop: epoch 2/3")
                fh.flush()
                time.sleep(0.1)
                fh.write("00 loss 8.0\n")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rank 0: ")]
    assert len(lines) == 3 and "rank 0/8: 751 classes" in lines[0] and "epoch 1/300" in lines[1]
    assert lines[2].endswith("epoch 2/300 loss 8.0")  # a line written in two parts arrives whole
    assert not any("noise" in ln for ln in lines)


def test_quick_eval_subset_is_fixed_and_bounded():
    rng = np.random.default_rng(0)
    query = pd.DataFrame({"path": [f"q{i}" for i in range(3368)], "pid": rng.integers(1, 751, 3368), "camid": 0})
    gallery = pd.DataFrame({"path": [f"g{i}" for i in range(19732)], "pid": rng.integers(-1, 751, 19732), "camid": 1})
    q, g = quick_eval_subset(query, gallery)
    assert len(q) == QUICK_EVAL_QUERIES and set(gallery.path[gallery.pid.isin(set(q.pid))]) <= set(g.path)  # every match kept
    assert (~g.pid.isin(set(q.pid))).sum() == QUICK_EVAL_DISTRACTING
    q2, g2 = quick_eval_subset(query, gallery)
    assert q2.path.tolist() == q.path.tolist() and g2.path.tolist() == g.path.tolist()  # seeded
    small_q, small_g = quick_eval_subset(query.head(10), gallery.head(50))
    assert len(small_q) == 10 and len(small_g) == 50  # small sets are used whole


def test_two_runs_sharing_the_download_cache_take_turns(tmp_path):
    src = tmp_path / "www" / "resnet.ckpt"
    src.parent.mkdir()
    src.write_bytes(np.random.default_rng(0).bytes(3 << 20))
    import hashlib

    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / "resnet.ckpt"
    results, errors = [], []

    def run():
        try:
            results.append(download(src.as_uri(), dest, sha256=digest, retries=5, timeout=60))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [dest] * 3
    assert dest.read_bytes() == src.read_bytes() and not dest.with_name("resnet.ckpt.part").exists()


def test_global_variants_never_load_the_stripes(tmp_path):
    assert not needs_local(["global", "global_rerank"]) and needs_local(["global", "global_local_rerank"])
    g = np.random.default_rng(1).random((4, 8), np.float32)
    save_features(tmp_path / "f.npz", g, np.ones((4, 3, 8), np.float32), np.arange(4), np.zeros(4), list("abcd"))
    f = load_features(tmp_path / "f.npz", local=False)
    assert f.local.shape == (4, 0, 0) and f.local.nbytes == 0
    np.testing.assert_array_equal(f.global_, g)
    assert load_features(tmp_path / "f.npz").local.shape == (4, 3, 8)
