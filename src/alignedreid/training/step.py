"""Device set-up, optimiser and the training step.

The step is an ``nn.Cell`` (``TrainStep``): forward, loss, gradients, data-parallel all-reduce and
the optimiser update in one ``construct``. In graph mode MindSpore compiles the Cell as one graph;
on CPU this form runs about twice as fast as the same step compiled from a plain function with
``ms.jit`` (measured in bench/train_throughput.py; see docs/architecture.md, training).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import mindspore as ms
import numpy as np
from mindspore import nn

from ..foundation.errors import ConfigError, DeviceError
from ..model.network import is_batchnorm_param


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def use_graph_mode(tcfg: dict) -> bool:
    """train.execution: 'auto' compiles the step (graph mode) on every device."""
    return tcfg["execution"] in ("auto", "graph")


def device_selection(tcfg: dict, env=None) -> tuple[str, int | None, str]:
    """(device target, device id or None, where the id came from) for this process.

    - CPU: no id.
    - msrun with several ranks: no id. msrun sets no DEVICE_ID; MindSpore gives each rank the device
      of its local rank only when set_device gets none (an explicit id would put every rank on it).
    - rank table with several ranks: DEVICE_ID, set by the launcher from the table (required).
    - one device: DEVICE_ID when set (a scheduler's choice), else train.device_id."""
    env = os.environ if env is None else env
    target = tcfg["device_target"]
    if target == "CPU":
        return target, None, "CPU has no device id"
    if tcfg["device_num"] > 1 and tcfg["launcher"] == "msrun":
        return target, None, "assigned by MindSpore from msrun's local rank"
    if tcfg["device_num"] > 1:
        if "DEVICE_ID" not in env:
            raise ConfigError("train.launcher rank_table: DEVICE_ID is not set; start the ranks with the pipeline's rank-table launcher")
        return target, int(env["DEVICE_ID"]), "DEVICE_ID from the rank table"
    if "DEVICE_ID" in env:
        return target, int(env["DEVICE_ID"]), "DEVICE_ID"
    return target, tcfg["device_id"], "train.device_id"


def select_device(tcfg: dict) -> None:
    """ms.set_device as :func:`device_selection` says; a failure names the device and where its id came from."""
    target, device_id, why = device_selection(tcfg)
    try:
        ms.set_device(target) if device_id is None else ms.set_device(target, device_id)
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        which = target if device_id is None else f"{target} device {device_id} ({why})"
        raise DeviceError(
            f"train.device_target: MindSpore cannot use {which}: {first} "
            "(the check_device rule says what MindSpore needs for this target and what this host has)"
        ) from e


def setup_device(tcfg: dict) -> DistInfo:
    """Select the device, execution mode and (for several devices) data-parallel communication."""
    ms.set_context(mode=ms.GRAPH_MODE if use_graph_mode(tcfg) else ms.PYNATIVE_MODE)
    select_device(tcfg)
    ms.set_seed(tcfg["seed"])
    ms.dataset.config.set_seed(tcfg["seed"])
    n = tcfg["device_num"]
    if n <= 1:
        return DistInfo()
    from mindspore.communication import get_group_size, get_rank, init

    try:
        init()
    except RuntimeError as e:
        raise DeviceError(f"train: cannot start {tcfg['launcher']} communication for {n} ranks: {str(e).strip().splitlines()[0]}") from e
    rank, size = get_rank(), get_group_size()
    if size != n:
        raise ConfigError(f"train.device_num is {n} but the launcher started {size} ranks")
    ms.reset_auto_parallel_context()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=size)
    return DistInfo(rank, size)


def build_optimizer(net, tcfg: dict, lrs: np.ndarray):
    """Momentum (Nesterov) or Adam over per-step learning rates; no weight decay on BatchNorm."""
    params = net.trainable_params()
    decay = [p for p in params if not is_batchnorm_param(p.name)]
    no_decay = [p for p in params if is_batchnorm_param(p.name)]
    groups = [{"params": decay, "weight_decay": tcfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}, {"order_params": params}]
    lr = ms.Tensor(lrs)
    if tcfg["optimizer"] == "momentum":
        return nn.Momentum(groups, learning_rate=lr, momentum=tcfg["momentum"], use_nesterov=tcfg["nesterov"])
    return nn.Adam(groups, learning_rate=lr)


def build_loss_scaler(tcfg: dict):
    """MindSpore's own loss scalers for train.loss_scale ('dynamic' or a number), else None."""
    ls = tcfg["loss_scale"]
    if ls is None:
        return None
    if ls == "dynamic":
        return ms.amp.DynamicLossScaler(scale_value=2.0**16, scale_factor=2, scale_window=1000)
    try:
        return ms.amp.StaticLossScaler(scale_value=float(ls))
    except ValueError as e:
        raise ConfigError(f"train.loss_scale: expected null, 'dynamic' or a number, got {ls!r}") from e


class TrainStep(nn.Cell):
    """One optimisation step: (images, labels) -> (total, id, triplet, local) losses."""

    def __init__(self, net, loss_fn, opt, dist: DistInfo, erasing=None, loss_scaler=None):
        super().__init__(auto_prefix=False)
        self.net, self.loss_fn, self.opt, self.erasing = net, loss_fn, opt, erasing
        self.loss_scaler = loss_scaler
        self.use_erasing = erasing is not None
        self.use_scaler = loss_scaler is not None
        self.grad_fn = ms.value_and_grad(self.forward, None, opt.parameters, has_aux=True)
        self.distributed = dist.size > 1
        self.reducer = nn.DistributedGradReducer(opt.parameters, mean=True, degree=dist.size) if self.distributed else None

    def forward(self, images, labels):
        if self.use_erasing:
            images = self.erasing(images)
        logits, feat, local = self.net(images)
        total, id_l, tri_l, loc_l = self.loss_fn(logits, feat, local, labels)
        if self.use_scaler:
            total = self.loss_scaler.scale(total)
        return total, (id_l, tri_l, loc_l)

    def construct(self, images, labels):
        (total, parts), grads = self.grad_fn(images, labels)
        if self.distributed:
            grads = self.reducer(grads)
        if self.use_scaler:
            total = self.loss_scaler.unscale(total)
            grads = self.loss_scaler.unscale(grads)
            finite = ms.amp.all_finite(grads)
            self.loss_scaler.adjust(finite)
            if finite:
                self.opt(grads)
        else:
            self.opt(grads)
        return total, parts[0], parts[1], parts[2]


def make_step(net, loss_fn, opt, dist: DistInfo, erasing=None, loss_scaler=None) -> TrainStep:
    """The training step, in training mode; compiled as one graph when the context is graph mode."""
    step = TrainStep(net, loss_fn, opt, dist, erasing, loss_scaler)
    step.set_train(True)
    return step
