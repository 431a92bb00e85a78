"""AlignedReID++ training loop (MindSpore, graph mode): single device or data-parallel ranks.

Rank 0 writes everything: per-epoch checkpoints (network + optimiser state, the last ``keep``
kept), the per-step log, and the final network checkpoint. A re-run after an interruption
resumes from the newest epoch checkpoint.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import mindspore as ms
import numpy as np
import pandas as pd
from mindspore import nn

from .augment import RandomErasing
from .errors import CheckpointError, ConfigError
from .io_utils import atomic_path, write_json
from .losses import AlignedLoss
from .lr_schedule import warmup_cosine
from .model import build_model, is_batchnorm_param
from .pipeline import train_dataset

log = logging.getLogger(__name__)
LOG_COLUMNS = ["epoch", "step", "global_step", "lr", "loss", "id_loss", "triplet_loss", "local_loss", "images_per_s"]
CKPT_RE = re.compile(r"epoch_(\d+)\.ckpt$")


@dataclass
class DistInfo:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def use_graph_mode(tcfg: dict) -> bool:
    """train.execution: 'auto' compiles the step (graph mode) on GPU and Ascend but runs it
    op by op (PyNative) on CPU: with MindSpore 2.10 the compiled ResNet training step stops
    making progress on CPU after a handful of steps (see README, known limitations)."""
    mode = tcfg.get("execution", "auto")
    if mode == "auto":
        return tcfg.get("device_target", "CPU") != "CPU"
    return mode == "graph"


def setup_device(tcfg: dict) -> DistInfo:
    """Select the device, execution mode and (for several devices) data-parallel communication."""
    target = tcfg.get("device_target", "CPU")
    ms.set_context(mode=ms.GRAPH_MODE if use_graph_mode(tcfg) else ms.PYNATIVE_MODE)
    device_id = int(os.environ.get("DEVICE_ID", tcfg.get("device_id", 0)))
    ms.set_device(target, device_id if target != "CPU" else None) if target != "CPU" else ms.set_device("CPU")
    ms.set_seed(tcfg.get("seed", 1))
    ms.dataset.config.set_seed(tcfg.get("seed", 1))
    n = tcfg.get("device_num", 1)
    if n <= 1:
        return DistInfo()
    from mindspore.communication import get_group_size, get_rank, init

    init()
    rank, size = get_rank(), get_group_size()
    if size != n:
        raise ConfigError(f"train.device_num is {n} but the launcher started {size} ranks")
    ms.reset_auto_parallel_context()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=size)
    return DistInfo(rank, size)


def build_optimizer(net, tcfg: dict, lrs: np.ndarray):
    wd = tcfg.get("weight_decay", 5e-4)
    params = net.trainable_params()
    decay = [p for p in params if not is_batchnorm_param(p.name)]
    no_decay = [p for p in params if is_batchnorm_param(p.name)]
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}, {"order_params": params}]
    lr = ms.Tensor(lrs)
    name = tcfg.get("optimizer", "momentum")
    if name == "momentum":
        return nn.Momentum(groups, learning_rate=lr, momentum=tcfg.get("momentum", 0.85), use_nesterov=tcfg.get("nesterov", True))
    if name == "adam":
        return nn.Adam(groups, learning_rate=lr)
    raise ConfigError(f"train.optimizer: expected 'momentum' or 'adam', got {name!r}")


class TrainState(nn.Cell):
    """Network and optimiser together, so one checkpoint holds both."""

    def __init__(self, net, opt):
        super().__init__(auto_prefix=False)
        self.net, self.opt = net, opt


def list_epoch_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for p in ckpt_dir.glob("epoch_*.ckpt"):
        m = CKPT_RE.search(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def make_step(net, loss_fn, opt, dist: DistInfo, loss_scale, erasing=None, graph: bool = True):
    def forward(images, labels):
        if erasing is not None:
            images = erasing(images)
        logits, feat, local = net(images)
        total, id_l, tri_l, loc_l = loss_fn(logits, feat, local, labels)
        if loss_scale is not None:
            total = loss_scale.scale(total)
        return total, (id_l, tri_l, loc_l)

    grad_fn = ms.value_and_grad(forward, None, opt.parameters, has_aux=True)
    reducer = nn.DistributedGradReducer(opt.parameters, mean=True, degree=dist.size) if dist.size > 1 else None

    def step(images, labels):
        (total, parts), grads = grad_fn(images, labels)
        if reducer is not None:
            grads = reducer(grads)
        if loss_scale is not None:
            total = loss_scale.unscale(total)
            grads = loss_scale.unscale(grads)
            finite = ms.amp.all_finite(grads)
            loss_scale.adjust(finite)
            if finite:
                opt(grads)
        else:
            opt(grads)
        return total, parts[0], parts[1], parts[2]

    return ms.jit(step) if graph else step


def train(cfg: dict, train_csv: str, out_dir: str, pretrained: str | None = None, eval_fn=None) -> dict:
    """Train per ``cfg`` (keys ``model``, ``train``); write into ``out_dir``. Returns a summary."""
    mcfg, tcfg = cfg["model"], cfg["train"]
    dist = setup_device(tcfg)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    if dist.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    manifest = pd.read_csv(train_csv)
    data, sampler, num_classes, steps = train_dataset(
        manifest, mcfg["height"], mcfg["width"], tcfg["batch_size"], tcfg["num_instances"], tcfg.get("augment", {}),
        seed=tcfg.get("seed", 1), rank=dist.rank, world_size=dist.size, workers=tcfg.get("data_workers", 2),
    )
    epochs = tcfg["epochs"]
    lrs = warmup_cosine(tcfg.get("lr_init", 0.0), tcfg["lr_max"], tcfg.get("lr_end", 3.5e-6), tcfg.get("warmup_epochs", 6), epochs, steps)
    net = build_model(num_classes, mcfg["depth"], mcfg.get("local_dim", 128), mcfg.get("conv_impl", "native"))
    if pretrained:
        from .pretrained import load_backbone_into

        load_backbone_into(net, pretrained)
    amp = tcfg.get("amp_level", "O0")
    if amp != "O0":
        if tcfg.get("device_target", "CPU") == "CPU":
            raise ConfigError(f"train.amp_level: {amp} needs a GPU or Ascend device; use O0 on CPU")
        net = ms.amp.auto_mixed_precision(net, amp)
    loss_fn = AlignedLoss(num_classes, tcfg.get("margin", 0.3), tcfg.get("label_smooth_epsilon", 0.1), tcfg.get("label_smooth", True))
    opt = build_optimizer(net, tcfg, lrs)
    state = TrainState(net, opt)
    ls = tcfg.get("loss_scale")
    loss_scale = None
    if ls == "dynamic":
        loss_scale = ms.amp.DynamicLossScaler(scale_value=2.0 ** 16, scale_factor=2, scale_window=1000)
    elif ls is not None:
        loss_scale = ms.amp.StaticLossScaler(scale_value=float(ls))

    init_metrics = eval_fn(net, "init") if (eval_fn and dist.is_main) else None

    start_epoch = 0
    existing = list_epoch_checkpoints(ckpt_dir)
    if existing:
        start_epoch, last = existing[-1]
        try:
            params = ms.load_checkpoint(str(last))
        except Exception as e:
            raise CheckpointError(f"{last}: cannot resume from this checkpoint ({e}); delete it to resume from an earlier one") from e
        ms.load_param_into_net(state, params)
        log.info("resuming after epoch %d from %s", start_epoch, last)
    sampler.set_epoch(start_epoch)

    net.set_train(True)
    erasing = RandomErasing() if tcfg.get("augment", {}).get("erasing", True) else None
    step_fn = make_step(net, loss_fn, opt, dist, loss_scale, erasing, use_graph_mode(tcfg))
    # The per-step log grows next to the epoch checkpoints (not a Snakemake output, so an
    # interrupted run keeps it and a resumed one continues it) and is published as log.csv at the end.
    log_path = ckpt_dir / "log.csv"
    if dist.is_main:
        rows = []
        if start_epoch and log_path.exists():
            rows = [r for r in csv.DictReader(open(log_path)) if int(r["epoch"]) <= start_epoch]
        with open(log_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
            w.writeheader()
            w.writerows(rows)
    batch = tcfg["batch_size"]
    log.info("rank %d/%d: %d classes, %d steps/epoch, epochs %d..%d, batch %d", dist.rank, dist.size, num_classes, steps, start_epoch + 1, epochs, batch)
    iterator = data.create_tuple_iterator(num_epochs=epochs - start_epoch) if epochs > start_epoch else None
    last_loss, ips_hist = None, []
    for epoch in range(start_epoch + 1, epochs + 1):
        t_epoch = time.perf_counter()
        t = time.perf_counter()
        epoch_rows = []
        for s, (images, labels) in enumerate(iterator, start=1):
            total, id_l, tri_l, loc_l = step_fn(images, labels)
            total = float(total.asnumpy())
            if not np.isfinite(total) and loss_scale is None:
                raise FloatingPointError(f"loss became {total} at epoch {epoch} step {s}; lower train.lr_max")
            now = time.perf_counter()
            ips = batch * dist.size / (now - t)
            t = now
            gstep = (epoch - 1) * steps + s
            epoch_rows.append([epoch, s, gstep, float(lrs[gstep - 1]), total, float(id_l.asnumpy()), float(tri_l.asnumpy()), float(loc_l.asnumpy()), ips])
            last_loss = total
            if s >= 2 or steps == 1:
                ips_hist.append(ips)
        if not epoch_rows:
            raise RuntimeError(f"the input pipeline yielded no batch in epoch {epoch}")
        if dist.is_main:
            with open(log_path, "a", newline="") as fh:
                csv.writer(fh).writerows(epoch_rows)
            log.info("epoch %d/%d loss %.4f (id %.3f tri %.3f local %.3f) lr %.2e %.1f img/s %.1f s", epoch, epochs, *epoch_rows[-1][4:8],
                     epoch_rows[-1][3], np.mean([r[-1] for r in epoch_rows]), time.perf_counter() - t_epoch)
            if epoch % tcfg.get("save_every", 1) == 0 or epoch == epochs:
                with atomic_path(ckpt_dir / f"epoch_{epoch:04d}.ckpt") as tmp:
                    ms.save_checkpoint(state, str(tmp), append_dict={"epoch_num": epoch})
                for _, old in list_epoch_checkpoints(ckpt_dir)[: -tcfg.get("keep_checkpoints", 5)]:
                    old.unlink()
    if dist.is_main and log_path.exists():  # over the whole run, resumed epochs included
        logged = pd.read_csv(log_path)
        if len(logged):
            last_loss = float(logged["loss"].iloc[-1])
            ips_hist = logged.loc[logged["step"] > 1, "images_per_s"].tolist() or logged["images_per_s"].tolist()
    summary = {"num_classes": num_classes, "steps_per_epoch": steps, "epochs": epochs, "resumed_from_epoch": start_epoch,
               "world_size": dist.size, "final_loss": last_loss, "median_images_per_s": float(np.median(ips_hist)) if ips_hist else None,
               "depth": mcfg["depth"], "height": mcfg["height"], "width": mcfg["width"], "pretrained": bool(pretrained)}
    if dist.size > 1:  # every rank's final weights, to check that data-parallel ranks agree
        ms.save_checkpoint(net, str(out_dir / f"rank_{dist.rank}_final.ckpt"))
    if dist.is_main:
        net.set_train(False)
        if eval_fn:
            summary["quick_eval"] = {"init": init_metrics, "trained": eval_fn(net, "trained")}
        with atomic_path(out_dir / "log.csv") as tmp:
            shutil.copyfile(log_path, tmp)
        with atomic_path(out_dir / "model.ckpt") as tmp:
            ms.save_checkpoint(net, str(tmp), append_dict={"num_classes": num_classes, "depth": mcfg["depth"]})
        write_json(out_dir / "train_summary.json", summary)
    return summary
