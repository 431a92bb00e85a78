"""A `snakemake` run interrupted during `train`, as users do it: Ctrl-C, then a hard kill (SIGKILL
of the whole process group, as a lost node or an OOM killer). Neither may leave an output marked
complete, and the next run must resume training from the newest epoch checkpoint instead of
starting over."""

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
import yaml

from tests.conftest import BIN, TINY, copy_workflow, run_snakemake

pytestmark = pytest.mark.workflow
TARGET = "results/train/model.ckpt"


def start(workdir, *args):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    log = open(workdir / f"snakemake_{time.time_ns()}.log", "w")
    return subprocess.Popen(
        [str(BIN / "snakemake"), "--cores", "2", TARGET, *args, "--configfile", "run.yaml"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ), log.name


def wait_for_checkpoint(workdir, proc, log, epoch):
    name = f"epoch_{epoch:04d}.ckpt"  # in the run's checkpoint set, results/train/checkpoints/<fingerprint>/
    deadline = time.time() + 900
    while not list((workdir / "results/train/checkpoints").glob(f"*/{name}")):
        assert proc.poll() is None, f"snakemake ended before epoch {epoch}:\n" + open(log).read()[-4000:]
        assert time.time() < deadline, f"no {name} after 15 min"
        time.sleep(0.3)


def test_interrupted_training_resumes(tmp_path):
    d = copy_workflow(tmp_path / "repo")
    cfg = json.loads(json.dumps(TINY))
    cfg["train"].update(epochs=6, max_steps=None, save_every=1, keep_checkpoints=10)
    (d / "run.yaml").write_text(yaml.safe_dump(cfg))
    outputs = [d / "results/train" / f for f in ("model.ckpt", "log.csv", "train_summary.json")]

    # 1. Ctrl-C (SIGINT to the foreground process group) after epoch 2: Snakemake stops the job and
    #    deletes its partial outputs; the epoch checkpoints (not outputs) stay.
    proc, log = start(d)
    wait_for_checkpoint(d, proc, log, 2)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) != 0
    assert not any(p.exists() for p in outputs), [p.name for p in outputs if p.exists()]
    assert list((d / "results/train/checkpoints").glob("*/epoch_0002.ckpt"))
    plan = run_snakemake(d, "-n", TARGET, "--configfile", "run.yaml").stdout
    assert "train" in plan and "Nothing to be done" not in plan

    # 2. The next plain run resumes; a hard kill after epoch 4 leaves no output behind either (the
    #    step log grows beside the checkpoints and becomes log.csv only at the end), so Snakemake
    #    has nothing half-written to distrust and plans train again without --rerun-incomplete.
    #    Only Snakemake's own lock outlives a SIGKILL; it says so and --unlock lifts it.
    proc, log = start(d)
    wait_for_checkpoint(d, proc, log, 4)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not any(p.exists() for p in outputs), [p.name for p in outputs if p.exists()]
    assert "resuming after epoch 2" in (d / "results/logs/train.log").read_text()
    plan = run_snakemake(d, "-n", TARGET, "--configfile", "run.yaml").stdout
    assert "train" in plan and "Nothing to be done" not in plan
    locked = run_snakemake(d, TARGET, "--configfile", "run.yaml", check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    run_snakemake(d, "--unlock", TARGET, "--configfile", "run.yaml")

    # 3. The next run finishes from epoch 4: every step logged exactly once, six epochs in all
    run_snakemake(d, TARGET, "--configfile", "run.yaml")
    assert "resuming after epoch 4" in (d / "results/logs/train.log").read_text()
    summary = json.loads((d / "results/train/train_summary.json").read_text())
    assert summary["epochs"] == 6 and summary["resumed_from_epoch"] == 4
    steps = pd.read_csv(d / "results/train/log.csv")
    assert sorted(steps.epoch.unique()) == [1, 2, 3, 4, 5, 6]
    assert not steps.duplicated(["epoch", "step"]).any() and len(steps) == 6 * summary["steps_per_epoch"]
    assert "Nothing to be done" in run_snakemake(d, "-n", TARGET, "--configfile", "run.yaml").stdout
