"""The network's numerics: the padding used in graph mode, im2col vs native convolution, the
train/test local branch and the export-time outputs."""

import mindspore as ms
import numpy as np
import pytest
from mindspore import ops

from alignedreid.model.network import UnfoldConv2d, build_model, resolve_conv_impl, zero_pad


@pytest.fixture
def graph_mode():
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=ms.PYNATIVE_MODE)


def test_zero_pad_compiled_gradient_stays_correct(graph_mode):
    """The upstream PadV3 bug shows from the 2nd compiled call and hangs near the 10th: run 25."""
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((2, 3, 6, 5)).astype(np.float32))
    w = ms.Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))

    def loss(t):
        return (zero_pad(t, 1, 1, 2, 1) * w).sum()

    compiled = ms.jit(ms.grad(loss))
    want = w.asnumpy()[:, :, 1:7, 2:7]  # the gradient of sum(pad(x) * w) is w cropped to x
    for call in range(25):
        np.testing.assert_array_equal(compiled(x).asnumpy(), want, err_msg=f"compiled call {call}")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_array_equal(ms.grad(loss)(x).asnumpy(), want)
    padded = zero_pad(x, 1, 1, 2, 1).asnumpy()
    np.testing.assert_array_equal(padded, np.pad(x.asnumpy(), ((0, 0), (0, 0), (1, 1), (2, 1))))


def test_unfold_convolution_gradient_repeats_in_graph_mode(graph_mode):
    """A stride-2 im2col convolution (asymmetric 'same' padding) trained in graph mode: its
    gradient must be identical on every call (the bug made it drift, then hang)."""
    ms.set_seed(0)
    conv = UnfoldConv2d(4, 6, 3, stride=2)
    x = ms.Tensor(np.random.default_rng(1).standard_normal((2, 4, 8, 6)).astype(np.float32))

    def loss(t):
        return (conv(t) ** 2).sum()

    grad = ms.jit(ms.grad(loss))
    first = grad(x).asnumpy()
    for call in range(1, 22):
        np.testing.assert_array_equal(grad(x).asnumpy(), first, err_msg=f"call {call}")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(ms.grad(loss)(x).asnumpy(), first, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,stride,h,w", [(7, 2, 64, 32), (3, 2, 16, 8), (3, 1, 16, 8), (1, 2, 16, 8), (3, 2, 15, 9)])
def test_unfold_equals_native_convolution(k, stride, h, w):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    native = ms.nn.Conv2d(5, 7, k, stride=stride, pad_mode="same", has_bias=False)
    unfold = UnfoldConv2d(5, 7, k, stride)
    unfold.weight.set_data(native.weight.value())
    x = ms.Tensor(np.random.default_rng(k * h).standard_normal((2, 5, h, w)).astype(np.float32))
    a, b = native(x).asnumpy(), unfold(x).asnumpy()
    assert a.shape == b.shape
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=6e-5)


def test_whole_network_same_output_with_either_convolution():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    ms.set_seed(3)
    native = build_model(5, 18, 128, conv_impl="native")
    unfold = build_model(5, 18, 128, conv_impl="unfold")
    ms.load_param_into_net(unfold, {p.name: p for p in native.get_parameters()}, strict_load=True)
    native.set_train(False)
    unfold.set_train(False)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 32)).astype(np.float32))
    for a, b in zip(native(x), unfold(x)):
        np.testing.assert_allclose(b.asnumpy(), a.asnumpy(), rtol=1e-4, atol=1e-4)


def test_local_branch_differs_between_training_and_test():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    net = build_model(4, 18, local_dim=16)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((3, 3, 96, 32)).astype(np.float32))
    net.set_train(True)
    logits, f, local = net(x)
    assert logits.shape == (3, 4) and f.shape == (3, 512) and local.shape == (3, 3, 16)  # 96 px -> 3 stripes
    net.set_train(False)
    g, stripes = net(x)
    assert g.shape == (3, 512) and stripes.shape == (3, 512, 3)  # raw backbone map: channels, stripes
    np.testing.assert_allclose(np.linalg.norm(stripes.asnumpy(), axis=1), 1.0, atol=1e-5)
    fmap = net.backbone(x).asnumpy().max(axis=3)
    np.testing.assert_allclose(stripes.asnumpy(), fmap / np.linalg.norm(fmap, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_conv_impl_resolution():
    assert resolve_conv_impl("auto", "CPU") == "native" and resolve_conv_impl("auto", "GPU") == "native"
    assert resolve_conv_impl("unfold", "CPU") == "unfold"
    with pytest.raises(ValueError, match="model.conv_impl: expected auto or one of .*got 'fft'"):
        resolve_conv_impl("fft", "CPU")
    assert ops is not None


def test_random_erasing_fills_a_rectangle_or_nothing():
    from alignedreid.training.augment import ERASE_FILL, RandomErasing

    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_seed(0)
    x = ms.Tensor(np.full((6, 3, 32, 16), 9.0, np.float32))
    out = RandomErasing(p=1.0)(x).asnumpy()
    for img in out:
        erased = img[0] != 9.0
        assert erased.any() and not erased.all()
        rows, cols = np.where(erased)
        box = erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all()  # one filled rectangle
        area = box.size / erased.size
        assert 0.02 * 0.5 <= area <= 0.4 * 1.01  # area 0.02-0.4 of the image (rounded, clipped at the border)
        np.testing.assert_allclose(img[:, rows[0], cols[0]], ERASE_FILL, rtol=1e-6)
    np.testing.assert_array_equal(RandomErasing(p=0.0)(x).asnumpy(), x.asnumpy())
