"""The training package's parts, without a full run: the typed job, checkpoints and resume, the
step log, the stall watchdog, and the compiled step against PyNative."""

import time

import mindspore as ms
import numpy as np
import pandas as pd
import pytest

from alignedreid.config import resolve
from alignedreid.errors import CheckpointError
from alignedreid.model import build_model
from alignedreid.training.checkpoints import TrainState, list_epoch_checkpoints, reset_if_changed, resume, save_epoch
from alignedreid.training.job import TrainJob
from alignedreid.training.losses import AlignedLoss
from alignedreid.training.step import DistInfo, build_loss_scaler, build_optimizer, make_step, use_graph_mode
from alignedreid.training.steplog import COLUMNS, StepLog
from alignedreid.training.watchdog import StallWatchdog


def make_job(tmp_path, **train):
    cfg = resolve({"model": {"depth": 18, "height": 64, "width": 32}, "train": train})
    if not (tmp_path / "train.csv").exists():
        (tmp_path / "train.csv").write_text("path,pid,camid\na.jpg,1,0\n")
    return TrainJob.from_config(cfg, tmp_path / "train.csv", tmp_path / "out")


def test_job_round_trip_and_fingerprint(tmp_path):
    job = make_job(tmp_path, lr_max=0.02).with_provenance()
    assert job.model["conv_impl"] == "native"  # 'auto' resolved once, for the device
    assert TrainJob.load(job.save(tmp_path / "job.json")) == job
    assert job.provenance["manifest_sha256"] and job.provenance["code_sha256"] and job.provenance["pretrained_sha256"] is None
    same = make_job(tmp_path, lr_max=0.02, threads=7, data_workers=3).with_provenance()
    other = make_job(tmp_path, lr_max=0.03).with_provenance()
    assert same.fingerprint() == job.fingerprint()  # execution-only keys do not count
    assert other.fingerprint() != job.fingerprint()
    (tmp_path / "train.csv").write_text("path,pid,camid\nb.jpg,1,0\n")
    assert make_job(tmp_path, lr_max=0.02).with_provenance().fingerprint() != job.fingerprint()  # another manifest


def test_epoch_checkpoints_rotate_resume_and_reset(tmp_path):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = build_model(3, 18)
    opt = build_optimizer(net, resolve({})["train"], np.full(10, 0.01, np.float32))
    state = TrainState(net, opt)
    ckpts = tmp_path / "ck"
    reset_if_changed(ckpts, "fp1")
    assert resume(state, ckpts) == 0
    for epoch in range(1, 6):
        save_epoch(state, ckpts, epoch, keep=2)
    assert [e for e, _ in list_epoch_checkpoints(ckpts)] == [4, 5]
    assert not list(ckpts.glob("*.part*"))
    assert resume(state, ckpts) == 5
    reset_if_changed(ckpts, "fp1")  # same run: kept
    assert len(list_epoch_checkpoints(ckpts)) == 2
    (ckpts / "epoch_0005.ckpt").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match=r"epoch_0005.ckpt: cannot resume from this checkpoint"):
        resume(state, ckpts)
    reset_if_changed(ckpts, "fp2")  # other settings: discarded
    assert list_epoch_checkpoints(ckpts) == [] and (ckpts / "fingerprint.txt").read_text().strip() == "fp2"


def test_step_log_keeps_resumed_rows_and_summarises(tmp_path):
    log = StepLog(tmp_path / "log.csv")
    log.start(0)
    log.append([[1, s, s, 0.1, 5.0 - s, 1, 1, 1, 10.0 * s] for s in (1, 2, 3)])
    log.append([[2, s, 3 + s, 0.1, 4.0 - s, 1, 1, 1, 10.0] for s in (1, 2, 3)])
    log.start(1)  # resumed after epoch 1: epoch 2's rows go
    df = pd.read_csv(tmp_path / "log.csv")
    assert list(df.columns) == COLUMNS and df.epoch.tolist() == [1, 1, 1]
    last, ips = log.totals()
    assert last == 2.0 and ips == 25.0  # median of steps 2 and 3 (first step of an epoch excluded)
    log.publish(tmp_path / "published.csv")
    assert (tmp_path / "published.csv").read_text() == (tmp_path / "log.csv").read_text()


def test_watchdog_reports_a_stalled_step():
    seen = []
    with StallWatchdog(factor=5, min_s=0.3, warmup=3, on_stall=seen.append, poll_s=0.02) as wd:
        for s in range(1, 5):
            wd.begin(f"epoch 1 step {s} (global step {s})")
            time.sleep(0.01)
            wd.end()
        assert wd.limit() == pytest.approx(0.3)  # 5 x ~0.01 s is below the floor
        wd.begin("epoch 1 step 5 (global step 5)")
        deadline = time.time() + 5
        while not seen and time.time() < deadline:
            time.sleep(0.02)
        wd.end()
    assert seen and seen[0].startswith("training stalled at epoch 1 step 5 (global step 5): no progress for")
    assert "train.stall_factor 5" in seen[0]


def test_watchdog_quiet_while_steps_progress():
    seen = []
    with StallWatchdog(factor=3, min_s=0.05, warmup=2, on_stall=seen.append, poll_s=0.01) as wd:
        for s in range(20):
            wd.begin(f"step {s}")
            time.sleep(0.02)
            wd.end()
    assert seen == []


def _four_losses(mode, images, labels, params):
    ms.set_context(mode=mode)
    ms.set_seed(5)
    net = build_model(4, 18, local_dim=16)
    ms.load_param_into_net(net, {k: ms.Parameter(v.copy(), name=k) for k, v in params.items()}, strict_load=True)
    t = resolve({"train": {"lr_max": 0.05}})["train"]
    opt = build_optimizer(net, t, np.full(10, 0.05, np.float32))
    step = make_step(net, AlignedLoss(4), opt, DistInfo(), erasing=None, loss_scaler=build_loss_scaler(t))
    return [float(step(images, labels)[0].asnumpy()) for _ in range(4)]


def test_compiled_step_matches_pynative():
    """The default (graph mode, native convolutions, the step as a Cell) gives the losses of the
    op-by-op execution for the same weights and batches (4 steps: the pad bug showed from step 2)."""
    ms.set_device("CPU")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_seed(5)
    init = {p.name: p.asnumpy() for p in build_model(4, 18, local_dim=16).get_parameters()}
    rng = np.random.default_rng(0)
    images = ms.Tensor(rng.standard_normal((8, 3, 64, 32)).astype(np.float32))
    labels = ms.Tensor(np.repeat(np.arange(4), 2).astype(np.int32))
    graph = _four_losses(ms.GRAPH_MODE, images, labels, init)
    pynative = _four_losses(ms.PYNATIVE_MODE, images, labels, init)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    assert len(set(graph)) == len(graph)  # the optimiser changed the weights at every step
    np.testing.assert_allclose(graph, pynative, rtol=2e-4, atol=2e-4)


def test_execution_modes():
    t = resolve({})["train"]
    assert use_graph_mode(t) and use_graph_mode({**t, "execution": "graph"}) and not use_graph_mode({**t, "execution": "pynative"})
    assert build_loss_scaler(t) is None
    assert isinstance(build_loss_scaler({**t, "loss_scale": 128}), ms.amp.StaticLossScaler)
    assert isinstance(build_loss_scaler({**t, "loss_scale": "dynamic"}), ms.amp.DynamicLossScaler)
