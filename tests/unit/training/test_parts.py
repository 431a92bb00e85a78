"""The training package's parts, without a full run: the typed job, checkpoints and resume, the
step log, the stall watchdog, and the compiled step against PyNative."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import mindspore as ms
import numpy as np
import pandas as pd
import pytest

from alignedreid.foundation.config import resolve
from alignedreid.foundation.errors import CheckpointError
from alignedreid.model.network import build_model
from alignedreid.training.checkpoints import TrainState, fingerprint_of, list_epoch_checkpoints, list_sets, resume, save_epoch, select_set
from alignedreid.training.checkpoints import main as checkpoints_cli
from alignedreid.training.job import TrainJob
from alignedreid.training.losses import AlignedLoss
from alignedreid.training.step import build_loss_scaler, build_optimizer, use_graph_mode
from alignedreid.training.steplog import COLUMNS, StepLog
from alignedreid.training.watchdog import StallWatchdog

REPO = Path(__file__).resolve().parents[3]


def make_job(tmp_path, **train):
    cfg = resolve({"model": {"depth": 18, "height": 64, "width": 32}, "train": train})
    if not (tmp_path / "train.csv").exists():
        (tmp_path / "train.csv").write_text("path,pid,camid\na.jpg,1,0\n")
    return TrainJob.from_config(cfg, tmp_path / "train.csv", tmp_path / "out")


def test_job_round_trip_and_fingerprint(tmp_path):
    job = make_job(tmp_path, lr_max=0.02).with_provenance()
    assert job.model["conv_impl"] == "native"  # 'auto' resolved once, for the device
    assert TrainJob.load(job.save(tmp_path / "job.json")) == job
    assert job.provenance["manifest_sha256"] and job.provenance["code"]["training/losses.py"] and job.provenance["pretrained_sha256"] is None
    same = make_job(tmp_path, lr_max=0.02, threads=7, data_workers=3).with_provenance()
    # where and how the ranks start does not change what they compute: a restart resumes
    launch = dict(master_port=9001, rank_table_file="/etc/hccl_8p.json", device_id=3, launcher="rank_table", nodes=1, save_every=5)
    assert make_job(tmp_path, lr_max=0.02, **launch).with_provenance().fingerprint() == job.fingerprint()
    assert make_job(tmp_path, lr_max=0.02, device_num=2).with_provenance().fingerprint() != job.fingerprint()
    other = make_job(tmp_path, lr_max=0.03).with_provenance()
    assert same.fingerprint() == job.fingerprint()  # execution-only keys do not count
    assert other.fingerprint() != job.fingerprint()
    (tmp_path / "train.csv").write_text("path,pid,camid\nb.jpg,1,0\n")
    assert make_job(tmp_path, lr_max=0.02).with_provenance().fingerprint() != job.fingerprint()  # another manifest


def test_epoch_checkpoints_rotate_and_resume(tmp_path):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = build_model(3, 18, 128)
    opt = build_optimizer(net, resolve({})["train"], np.full(10, 0.01, np.float32))
    state = TrainState(net, opt)
    ckpts, message = select_set(tmp_path / "checkpoints", "a" * 64, {"train": {"lr_max": 0.1}})
    assert ckpts.name == "a" * 16 and "no earlier epoch checkpoints" in message
    assert resume(state, ckpts) == 0
    for epoch in range(1, 6):
        save_epoch(state, ckpts, epoch, keep=2)
    assert [e for e, _ in list_epoch_checkpoints(ckpts)] == [4, 5]
    assert not list(ckpts.glob("*.part*"))
    assert resume(state, ckpts) == 5
    again, message = select_set(tmp_path / "checkpoints", "a" * 64, {"train": {"lr_max": 0.1}})
    assert again == ckpts and "resuming checkpoint set aaaaaaaaaaaaaaaa after epoch 5" in message
    (ckpts / "epoch_0005.ckpt").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match=r"epoch_0005.ckpt: cannot resume from this checkpoint"):
        resume(state, ckpts)


def _fake_set(root, fingerprint, description, epochs):
    d, _ = select_set(root, fingerprint, description)
    for e in epochs:
        (d / f"epoch_{e:04d}.ckpt").write_bytes(f"{fingerprint} {e}".encode() * 100)
    return d


def test_other_settings_or_code_start_a_new_set_and_keep_every_earlier_one(tmp_path):
    """Two successive changes (a key, then a training module): every earlier epoch checkpoint stays,
    byte for byte, and the message says what changed."""
    root = tmp_path / "checkpoints"
    first = {"model": {"depth": 18}, "train": {"lr_max": 0.1}, "manifest_sha256": "m", "code": {"training/losses.py": "1", "model/network.py": "1"}}
    a = _fake_set(root, "a" * 64, first, [3, 4])
    before = {p.name: p.read_bytes() for p in a.iterdir()}
    second = {**first, "train": {"lr_max": 0.2}}
    b, message = select_set(root, "b" * 64, second)
    assert "starting checkpoint set bbbbbbbbbbbbbbbb from epoch 1" in message
    assert "train.lr_max: 0.1 -> 0.2" in message and str(a) in message
    (b / "epoch_0001.ckpt").write_bytes(b"b1")
    third = {**second, "code": {"training/losses.py": "2", "model/network.py": "1"}}
    c, message = select_set(root, "c" * 64, third)
    assert "code of training/losses.py" in message and "model/network.py" not in message.split("because")[1]
    assert {p.name: p.read_bytes() for p in a.iterdir()} == before
    assert (b / "epoch_0001.ckpt").read_bytes() == b"b1"
    assert {s["name"] for s in list_sets(root)} == {"a" * 16, "b" * 16, "c" * 16}


def test_a_set_trained_before_a_refactor_is_adopted_and_resumed(tmp_path, capsys):
    """After a code change that leaves the weights alone (e.g. modules moved into folders) the new code
    gets a new fingerprint; the message names the adopt command, which continues the old set under
    the current code (hard links, the old set untouched) so that the next run resumes it."""
    job = make_job(tmp_path).with_provenance()
    train, root = tmp_path / "out", job.sets_dir
    before_refactor = {**job.description(), "code": {**job.provenance["code"], "model.py": "the layout before"}}
    before_refactor["code"].pop("model/network.py")
    old = _fake_set(root, fingerprint_of(before_refactor), before_refactor, [1, 2, 3])
    old_bytes = {p.name: p.read_bytes() for p in old.iterdir()}
    _, message = select_set(root, job.fingerprint(), job.description())
    assert f"adopt {old.name}" in message and "code of model.py, model/network.py" in message
    for s in list(root.iterdir()):  # the started, empty set of the current code
        if s != old:
            assert not list_epoch_checkpoints(s)
    assert checkpoints_cli(["--train-dir", str(train), "adopt", old.name]) == 0
    assert "epochs 1..3" in capsys.readouterr().out
    resumed, message = select_set(root, job.fingerprint(), job.description())
    assert message.startswith(f"resuming checkpoint set {job.fingerprint()[:16]} after epoch 3")
    assert [e for e, _ in list_epoch_checkpoints(resumed)] == [1, 2, 3]
    assert json.loads((resumed / "set.json").read_text())["adopted_from"] == old.name
    assert {p.name: p.read_bytes() for p in old.iterdir()} == old_bytes
    assert checkpoints_cli(["--train-dir", str(train), "adopt", old.name]) == 2  # the current code's set has epochs now


def test_legacy_layout_becomes_sets_and_the_cli_removes_only_what_it_is_told(tmp_path, capsys):
    train = tmp_path / "train"
    root = train / "checkpoints"
    root.mkdir(parents=True)
    (root / "fingerprint.txt").write_text("0123456789abcdef" * 4 + "\n")
    (root / "epoch_0007.ckpt").write_bytes(b"old")
    (train / "checkpoints.previous").mkdir()
    (train / "checkpoints.previous" / "epoch_0002.ckpt").write_bytes(b"older")
    current = _fake_set(root, "d" * 64, {"train": {}}, [1])
    assert (root / "legacy-0123456789ab" / "epoch_0007.ckpt").read_bytes() == b"old"
    assert (root / "legacy-previous" / "epoch_0002.ckpt").read_bytes() == b"older"
    (train / "train_summary.json").write_text(json.dumps({"checkpoint_set": current.name}))
    assert checkpoints_cli(["--train-dir", str(train), "list"]) == 0
    out = capsys.readouterr().out
    assert "legacy-0123456789ab  epochs 7..7" in out and f"{current.name}  epochs 1..1" in out and "(current)" in out
    assert checkpoints_cli(["--train-dir", str(train), "remove", "nope"]) == 2  # unknown names remove nothing
    assert len(list_sets(root)) == 3
    assert checkpoints_cli(["--train-dir", str(train), "remove", "legacy-previous"]) == 0
    assert {s["name"] for s in list_sets(root)} == {"legacy-0123456789ab", current.name}
    assert checkpoints_cli(["--train-dir", str(train), "remove", "--all-but-current"]) == 0
    assert [s["name"] for s in list_sets(root)] == [current.name]


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


class _LossAndGrads(ms.nn.Cell):
    """Loss and its gradients w.r.t. every trainable parameter, at the network's current weights
    (no optimiser: the weights stay fixed from call to call)."""

    def __init__(self, net, loss_fn):
        super().__init__(auto_prefix=False)
        self.net, self.loss_fn = net, loss_fn
        self.params = ms.ParameterTuple(net.trainable_params())
        self.grad_fn = ms.value_and_grad(self.forward, None, self.params)

    def forward(self, images, labels):
        logits, feat, local = self.net(images)
        return self.loss_fn(logits, feat, local, labels)[0]

    def construct(self, images, labels):
        return self.grad_fn(images, labels)


def _grad_fn(mode, conv_impl, init):
    ms.set_context(mode=mode)
    net = build_model(4, 18, local_dim=16, conv_impl=conv_impl)
    ms.load_param_into_net(net, {k: ms.Parameter(v.copy(), name=k) for k, v in init.items()}, strict_load=True)
    net.set_train(True)
    step = _LossAndGrads(net, AlignedLoss(4, 0.3, 0.1, True))
    names = [p.name for p in net.trainable_params()]

    def call(images, labels):
        loss, grads = step(images, labels)
        return float(loss.asnumpy()), {n: g.asnumpy() for n, g in zip(names, grads)}

    return call


# Relative L2 error allowed between a compiled gradient and PyNative's at the same weights. Measured
# per tensor: <= 1.4e-6 (native and unfold, AMD EPYC with AVX-512) and <= 3.3e-6 (another AVX-512
# EPYC): the two modes pick other kernels and summation orders. A wrong gradient (the ops.pad bug
# below) is off by 0.86-1.01, so 1e-4 separates the two by four orders of magnitude.
GRAD_REL_TOL = 1e-4


def _rel_err(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def _check_compiled_gradients(conv_impl, calls, rel_tol=GRAD_REL_TOL):
    """Compiled gradients at fixed weights, ``calls`` times: each call bitwise equal to the first and
    within ``rel_tol`` of PyNative's, asserted per call so a kernel that drifts and then hangs fails
    before it can hang."""
    ms.set_device("CPU")
    ms.set_seed(5)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    init = {p.name: p.asnumpy() for p in build_model(4, 18, local_dim=16, conv_impl=conv_impl).get_parameters()}
    rng = np.random.default_rng(0)
    images = ms.Tensor(rng.standard_normal((8, 3, 64, 32)).astype(np.float32))
    labels = ms.Tensor(np.repeat(np.arange(4), 2).astype(np.int32))
    try:
        ref_loss, ref = _grad_fn(ms.PYNATIVE_MODE, conv_impl, init)(images, labels)
        compiled = _grad_fn(ms.GRAPH_MODE, conv_impl, init)
        first = None
        for i in range(calls):
            loss, grads = compiled(images, labels)
            assert loss == pytest.approx(ref_loss, rel=1e-5), f"call {i + 1}: loss {loss} vs PyNative {ref_loss}"
            worst = max(grads, key=lambda n: _rel_err(grads[n], ref[n]))
            assert _rel_err(grads[worst], ref[worst]) <= rel_tol, (
                f"call {i + 1}: gradient of {worst} off PyNative's by rel-L2 {_rel_err(grads[worst], ref[worst]):.3g}"
            )
            if first is None:
                first = grads
            else:
                changed = [n for n in grads if not np.array_equal(grads[n], first[n])]
                assert not changed, f"call {i + 1}: compiled gradients differ from call 1 at the same weights ({changed[:3]})"
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("conv_impl", ["native", "unfold"])
def test_compiled_gradients_match_pynative(conv_impl):
    """Graph mode computes PyNative's gradients, the same on every call (6 calls at fixed weights;
    the pad bug gave wrong gradients from call 2 and a hang around call 6). Not a comparison of
    optimiser trajectories: those diverge legitimately when a ReLU input within rounding of zero
    flips between kernels (seen on AVX-512 CPUs)."""
    _check_compiled_gradients(conv_impl, calls=6)


def _ops_pad(x, top, bottom, left, right):
    """The padding the project used before zero_pad: ops.pad, whose compiled gradient is wrong on CPU."""
    return ms.ops.pad(x, (left, right, top, bottom))


def _check_with_ops_pad(calls: int) -> None:
    import alignedreid.model.network as model

    model.zero_pad = _ops_pad
    _check_compiled_gradients("unfold", calls)


def test_gradient_check_catches_the_pad_bug():
    """The check above fails on a real gradient error: with ops.pad (MindSpore 2.10's CPU PadV3 bug)
    back in the im2col path, it stops at call 2, before the kernel could hang. In a child process:
    MindSpore keeps a compiled Cell's parsed globals for the rest of the process."""
    code = "from tests.unit.training.test_parts import _check_with_ops_pad; _check_with_ops_pad(3)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, "the gradient check passed with ops.pad's wrong gradients"
    assert re.search(r"AssertionError: call 2: gradient of \S+ off PyNative's by rel-L2", proc.stderr), proc.stderr[-3000:]


def test_execution_modes():
    t = resolve({})["train"]
    assert use_graph_mode(t) and use_graph_mode({**t, "execution": "graph"}) and not use_graph_mode({**t, "execution": "pynative"})
    assert build_loss_scaler(t) is None
    assert isinstance(build_loss_scaler({**t, "loss_scale": 128}), ms.amp.StaticLossScaler)
    assert isinstance(build_loss_scaler({**t, "loss_scale": "dynamic"}), ms.amp.DynamicLossScaler)


def test_worker_stops_with_a_message_when_inputs_are_missing(tmp_path, caplog):
    from alignedreid.training.worker import main

    job = make_job(tmp_path)
    (tmp_path / "train.csv").unlink()
    with pytest.raises(SystemExit) as stop:
        main(["--job", str(job.save(tmp_path / "job.json"))])
    assert stop.value.code == 1
    assert "train.csv" in caplog.text


def test_build_run_sizes_an_epoch_from_the_manifest(tmp_path):
    from PIL import Image

    from alignedreid.training.loop import build_run

    rows = []
    for pid in range(1, 5):
        for k in range(4):
            p = tmp_path / f"{pid}_{k}.jpg"
            Image.new("RGB", (32, 64), (40 * pid, 10 * k, 90)).save(p)
            rows.append(f"{p},{pid},{k % 2}")
    (tmp_path / "train.csv").write_text("path,pid,camid\n" + "\n".join(rows) + "\n")
    run = build_run(make_job(tmp_path, batch_size=8, num_instances=4, epochs=1, quick_eval=False))
    assert run.num_classes == 4 and run.steps == 2  # 4 identities x 4 instances / 8 per step
