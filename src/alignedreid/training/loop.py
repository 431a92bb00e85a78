"""The AlignedReID++ training loop: single device or one data-parallel rank.

Rank 0 writes everything: epoch checkpoints (network + optimiser state, the newest
``train.keep_checkpoints`` kept), the per-step log, the final network checkpoint and the summary.
A re-run after an interruption resumes after the newest epoch checkpoint (training/checkpoints.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import mindspore as ms
import numpy as np

from ..data.loader import train_dataset
from ..foundation.errors import ConfigError, PipelineError
from ..foundation.io_utils import atomic_path, write_json
from ..model.network import build_model
from .augment import RandomErasing
from .checkpoints import TrainState, resume, save_epoch
from .job import TrainJob
from .losses import AlignedLoss
from .lr_schedule import warmup_cosine
from .step import DistInfo, build_loss_scaler, build_optimizer, make_step, setup_device
from .steplog import StepLog
from .watchdog import StallWatchdog

log = logging.getLogger(__name__)


@dataclass
class Run:
    """Everything one training process works with, built by :func:`build_run`."""

    job: TrainJob
    dist: DistInfo
    data: object
    sampler: object
    num_classes: int
    steps: int
    lrs: np.ndarray
    net: object
    state: TrainState
    step: object


def build_run(job: TrainJob) -> Run:
    """Device, input pipeline, network (with the pretrained backbone), optimiser and step."""
    m, t = job.model, job.train
    dist = setup_device(t)
    if dist.is_main:
        job.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    data, sampler, num_classes, steps = train_dataset(
        job.manifest(job.train_csv),
        m["height"],
        m["width"],
        t["batch_size"],
        t["num_instances"],
        t["augment"],
        seed=t["seed"],
        rank=dist.rank,
        world_size=dist.size,
        workers=t["data_workers"],
    )
    lrs = warmup_cosine(t["lr_init"], t["lr_max"], t["lr_end"], t["warmup_epochs"], t["epochs"], steps)
    net = build_model(num_classes, m["depth"], m["local_dim"], m["conv_impl"])
    if job.pretrained:
        from ..model.checkpoint import load_backbone_into

        load_backbone_into(net, job.pretrained)
    if t["amp_level"] != "O0":
        if t["device_target"] == "CPU":
            raise ConfigError(f"train.amp_level: {t['amp_level']} needs a GPU or Ascend device; use O0 on CPU")
        net = ms.amp.auto_mixed_precision(net, t["amp_level"])
    loss_fn = AlignedLoss(num_classes, t["margin"], t["label_smooth_epsilon"], t["label_smooth"])
    opt = build_optimizer(net, t, lrs)
    erasing = RandomErasing() if t["augment"]["erasing"] else None
    step = make_step(net, loss_fn, opt, dist, erasing, build_loss_scaler(t))
    return Run(job, dist, data, sampler, num_classes, steps, lrs, net, TrainState(net, opt), step)


def run_epochs(run: Run, start_epoch: int, steplog: StepLog | None) -> None:
    """Train epochs start_epoch+1 .. train.epochs (or until train.max_steps), logging and saving on rank 0."""
    t, dist, job = run.job.train, run.dist, run.job
    epochs, batch = t["epochs"], t["batch_size"]
    max_steps = t["max_steps"] or epochs * run.steps
    last_epoch = min(epochs, -(-max_steps // run.steps))
    if start_epoch >= last_epoch:
        return
    iterator = run.data.create_tuple_iterator(num_epochs=last_epoch - start_epoch)
    with StallWatchdog(t["stall_factor"], t["stall_min_s"]) as watchdog:
        for epoch in range(start_epoch + 1, last_epoch + 1):
            t_epoch = tick = time.perf_counter()
            rows = []
            for s, (images, labels) in enumerate(iterator, start=1):
                gstep = (epoch - 1) * run.steps + s
                watchdog.begin(f"epoch {epoch} step {s} (global step {gstep})")
                losses = [float(x.asnumpy()) for x in run.step(images, labels)]
                watchdog.end()
                if not np.isfinite(losses[0]) and t["loss_scale"] is None:
                    raise FloatingPointError(f"loss became {losses[0]} at epoch {epoch} step {s}; lower train.lr_max")
                now = time.perf_counter()
                rows.append([epoch, s, gstep, float(run.lrs[gstep - 1]), *losses, batch * dist.size / (now - tick)])
                tick = now
                if gstep >= max_steps:
                    break
            if not rows:
                raise PipelineError(f"the input pipeline yielded no batch in epoch {epoch}")
            if dist.is_main:
                steplog.append(rows)
                log.info(
                    "epoch %d/%d loss %.4f (id %.3f tri %.3f local %.3f) lr %.2e %.1f img/s %.1f s",
                    epoch,
                    last_epoch,
                    *rows[-1][4:8],
                    rows[-1][3],
                    np.mean([r[-1] for r in rows]),
                    time.perf_counter() - t_epoch,
                )
                if epoch % t["save_every"] == 0 or epoch == last_epoch:
                    save_epoch(run.state, job.checkpoint_dir, epoch, t["keep_checkpoints"])


def finish(run: Run, start_epoch: int, steplog: StepLog | None) -> dict:
    """Summary, final checkpoint and published step log (rank 0); every rank's final weights when distributed."""
    job, dist = run.job, run.dist
    last_loss, ips = steplog.totals() if steplog else (None, None)
    summary = {
        "num_classes": run.num_classes,
        "steps_per_epoch": run.steps,
        "epochs": job.train["epochs"],
        "max_steps": job.train["max_steps"],
        "resumed_from_epoch": start_epoch,
        "checkpoint_set": job.checkpoint_dir.name,
        "world_size": dist.size,
        "final_loss": last_loss,
        "median_images_per_s": ips,
        "median_step_s": job.train["batch_size"] * dist.size / ips if ips else None,
        "device_target": job.train["device_target"],
        "execution": "graph" if ms.get_context("mode") == ms.GRAPH_MODE else "pynative",
        "conv_impl": job.model["conv_impl"],
        "depth": job.model["depth"],
        "height": job.model["height"],
        "width": job.model["width"],
        "pretrained": bool(job.pretrained),
    }
    if dist.size > 1:  # every rank's final weights, to check that data-parallel ranks agree
        ms.save_checkpoint(run.net, str(job.out_path / f"rank_{dist.rank}_final.ckpt"))
    if dist.is_main:
        run.net.set_train(False)
        steplog.publish(job.out_path / "log.csv")
        with atomic_path(job.out_path / "model.ckpt") as tmp:
            ms.save_checkpoint(run.net, str(tmp), append_dict={"num_classes": run.num_classes, "depth": job.model["depth"]})
        write_json(job.out_path / "train_summary.json", summary)
    return summary


def train(job: TrainJob) -> dict:
    """Run ``job`` in this process (one device, or one rank of a data-parallel launch); returns the summary.
    (The quick evaluation of the network before and after training is rule quick_eval's, after this.)"""
    run = build_run(job)
    start_epoch = resume(run.state, job.checkpoint_dir)
    run.sampler.set_epoch(start_epoch)
    steplog = StepLog(job.checkpoint_dir / "log.csv") if run.dist.is_main else None
    if steplog:
        steplog.start(start_epoch)
    run.net.set_train(True)
    log.info(
        "rank %d/%d: %d classes, %d steps/epoch, epochs %d..%d, batch %d, max_steps %s",
        run.dist.rank,
        run.dist.size,
        run.num_classes,
        run.steps,
        start_epoch + 1,
        job.train["epochs"],
        job.train["batch_size"],
        job.train["max_steps"],
    )
    run_epochs(run, start_epoch, steplog)
    return finish(run, start_epoch, steplog)
