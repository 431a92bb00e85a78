"""AlignedReID++ network in MindSpore: ResNet backbone, global branch, local branch, classifier.

Backbone parameter names follow the MindSpore model-zoo ResNet (``conv1``, ``bn1``,
``layerN.i.{conv,bn}K``, ``layerN.i.down_sample_layer.{0,1}``) under the prefix
``backbone.``; :mod:`alignedreid.model.pretrained` maps zoo and mindcv checkpoints onto them.
Convolutions use ``pad_mode='same'`` and BatchNorm eps 1e-4, as the zoo's ImageNet model.

Outputs (docs/architecture.md §5):
  training: (logits [N, K], global f [N, C], local [N, S, 128] L2-normalised per stripe)
  eval:     (global f [N, C], local [N, C, S] = per-stripe L2-normalised width-max of the
            raw backbone map; S = input height / 32)
"""

from __future__ import annotations

import mindspore as ms
from mindspore import Parameter, nn, ops
from mindspore.common.initializer import HeNormal, initializer

BN_EPS = 1e-4
BN_MOMENTUM = 0.9
DEPTHS = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3])}


CONV_IMPLS = ("native", "unfold")


def _same_pads(size: int, k: int, s: int):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2, out


def zero_pad(x, top: int, bottom: int, left: int, right: int):
    """Zero padding of the last two axes by concatenation.

    Not ``ops.pad``: in graph mode its gradient is a CPU ``PadV3`` with negative pads, which in
    MindSpore 2.10 crops again from its previous output on every call (wrong gradients from the
    second step, then an endless loop); bench/pad_bug_repro.py reproduces it and
    tests/unit/test_model.py checks this function's compiled gradient against PyNative."""
    n, c, h, w = x.shape
    if top or bottom:
        parts = ([ops.zeros((n, c, top, w), x.dtype)] if top else []) + [x] + ([ops.zeros((n, c, bottom, w), x.dtype)] if bottom else [])
        x = ops.concat(parts, 2)
        h = h + top + bottom
    if left or right:
        parts = ([ops.zeros((n, c, h, left), x.dtype)] if left else []) + [x] + ([ops.zeros((n, c, h, right), x.dtype)] if right else [])
        x = ops.concat(parts, 3)
    return x


class UnfoldConv2d(nn.Cell):
    """Convolution with ``pad_mode='same'`` computed as im2col + one matrix product.

    Same parameter (``weight`` [out, in, k, k]) and same result as ``nn.Conv2d(pad_mode='same')``,
    runs on the matrix-product kernel. Kept as ``model.conv_impl: unfold`` for CPUs where
    MindSpore's native convolution is slow (docs/architecture.md, CPU performance); the default is
    the native convolution everywhere."""

    def __init__(self, cin, cout, k, stride=1):
        super().__init__()
        self.k, self.s, self.cin, self.cout = k, stride, cin, cout
        self.weight = Parameter(initializer(HeNormal(), (cout, cin, k, k), ms.float32), name="weight")

    def construct(self, x):
        n, c, h, w = x.shape
        k, s = self.k, self.s
        pt, pb, ho = _same_pads(h, k, s)
        pl, pr, wo = _same_pads(w, k, s)
        if k == 1 and s == 1:
            cols = x.reshape(n, c, h * w)
        elif pt == pb and pl == pr:
            cols = ops.unfold(x, k, 1, (pt, pl), s)
        else:
            cols = ops.unfold(zero_pad(x, pt, pb, pl, pr), k, 1, 0, s)
        wm = self.weight.reshape(self.cout, c * k * k)
        y = ops.matmul(cols.transpose(0, 2, 1).reshape(n * ho * wo, c * k * k), wm.T)
        return y.reshape(n, ho, wo, self.cout).transpose(0, 3, 1, 2)


def _conv(cin, cout, k, stride=1, impl="native"):
    if impl == "unfold":
        return UnfoldConv2d(cin, cout, k, stride)
    if impl != "native":
        raise ValueError(f"model.conv_impl: expected one of {CONV_IMPLS}, got {impl!r}")
    return nn.Conv2d(cin, cout, k, stride=stride, pad_mode="same", has_bias=False, weight_init="HeNormal")


def _bn(c, zero_gamma=False):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM, gamma_init="zeros" if zero_gamma else "ones")


class BasicBlock(nn.Cell):
    expansion = 1

    def __init__(self, cin, cout, stride=1, impl="native"):
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, stride, impl)
        self.bn1 = _bn(cout)
        self.conv2 = _conv(cout, cout, 3, 1, impl)
        self.bn2 = _bn(cout)
        self.relu = nn.ReLU()
        self.down_sample = stride != 1 or cin != cout
        self.down_sample_layer = nn.SequentialCell([_conv(cin, cout, 1, stride, impl), _bn(cout)]) if self.down_sample else None

    def construct(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.down_sample:
            identity = self.down_sample_layer(x)
        return self.relu(out + identity)


class Bottleneck(nn.Cell):
    expansion = 4

    def __init__(self, cin, cout, stride=1, impl="native"):
        super().__init__()
        mid = cout // self.expansion
        self.conv1 = _conv(cin, mid, 1, 1, impl)
        self.bn1 = _bn(mid)
        self.conv2 = _conv(mid, mid, 3, stride, impl)
        self.bn2 = _bn(mid)
        self.conv3 = _conv(mid, cout, 1, 1, impl)
        self.bn3 = _bn(cout)
        self.relu = nn.ReLU()
        self.down_sample = stride != 1 or cin != cout
        self.down_sample_layer = nn.SequentialCell([_conv(cin, cout, 1, stride, impl), _bn(cout)]) if self.down_sample else None

    def construct(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.down_sample:
            identity = self.down_sample_layer(x)
        return self.relu(out + identity)


class ResNet(nn.Cell):
    """ResNet-18/34/50 feature extractor (no pooling, no classifier); last stride 2."""

    def __init__(self, depth: int, conv_impl: str = "native"):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"model.depth: expected one of {sorted(DEPTHS)}, got {depth}")
        kind, counts = DEPTHS[depth]
        block = Bottleneck if kind == "bottleneck" else BasicBlock
        self.conv1 = _conv(3, 64, 7, 2, conv_impl)
        self.bn1 = _bn(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
        widths = [64, 128, 256, 512]
        cin = 64
        layers = []
        for i, (w, n) in enumerate(zip(widths, counts)):
            cout = w * block.expansion
            blocks = [block(cin, cout, 1 if i == 0 else 2, conv_impl)] + [block(cout, cout, 1, conv_impl) for _ in range(n - 1)]
            layers.append(nn.SequentialCell(blocks))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.out_channels = cin

    def construct(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def l2_normalize(x, axis: int):
    """x / sqrt(max(sum(x^2), 1e-24)) along ``axis``, in ops that every export format knows."""
    return x / ops.sqrt(ops.maximum((x * x).sum(axis=axis, keepdims=True), 1e-24))


class AlignedReID(nn.Cell):
    def __init__(self, num_classes: int, depth: int, local_dim: int, conv_impl: str = "native"):
        super().__init__()
        self.backbone = ResNet(depth, conv_impl)
        c = self.backbone.out_channels
        self.feat_dim = c
        self.classifier = nn.Dense(c, num_classes)
        self.local_bn = _bn(c)
        self.local_relu = nn.ReLU()
        self.local_conv = nn.Conv2d(c, local_dim, 1, has_bias=True, weight_init="HeNormal")

    def construct(self, x):
        fmap = self.backbone(x)  # [N, C, H, W]
        f = fmap.mean(axis=(2, 3))
        if self.training:
            lf = self.local_relu(self.local_bn(fmap)).max(axis=3, keepdims=True)  # [N, C, H, 1]
            lf = self.local_conv(lf).squeeze(3).transpose(0, 2, 1)  # [N, H, D]
            return self.classifier(f), f, l2_normalize(lf, 2)
        lf = fmap.max(axis=3)  # [N, C, H]
        return f, l2_normalize(lf, 1)


def resolve_conv_impl(impl: str, device_target: str) -> str:
    """'auto' -> the native convolution on every device (on CPU fast with the oneDNN ISA cap of
    alignedreid.foundation.cpu_runtime); 'native' and 'unfold' are kept as given."""
    if impl not in ("auto", *CONV_IMPLS):
        raise ValueError(f"model.conv_impl: expected auto or one of {CONV_IMPLS}, got {impl!r}")
    return "native" if impl == "auto" else impl


def build_model(num_classes: int, depth: int, local_dim: int, conv_impl: str = "native") -> AlignedReID:
    return AlignedReID(num_classes, depth, local_dim, conv_impl)


def is_batchnorm_param(name: str) -> bool:
    """BN scale/shift: excluded from weight decay, as the recipe."""
    return name.endswith((".gamma", ".beta"))
