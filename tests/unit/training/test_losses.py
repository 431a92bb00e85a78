import mindspore as ms
import numpy as np
import pytest

from alignedreid.evaluation.reference import ref_local_distance
from alignedreid.training.losses import AlignedLoss, CrossEntropyLabelSmooth, euclidean_dist, hard_example_mining, paired_local_dist

ms.set_context(mode=ms.PYNATIVE_MODE)
ms.set_device("CPU")


def np_ce_smooth(logits, labels, k, eps):
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    t = np.full_like(logp, eps / k)
    t[np.arange(len(labels)), labels] += 1 - eps
    return (-t * logp).sum(1).mean()


def np_batch_hard(feat, labels):
    d = np.sqrt(np.maximum(((feat[:, None] - feat[None]) ** 2).sum(-1), 1e-12))
    ap, an, pi, ni = [], [], [], []
    for i in range(len(feat)):
        pos = np.where(labels == labels[i])[0]
        neg = np.where(labels != labels[i])[0]
        p = pos[np.argmax(d[i, pos])]
        n = neg[np.argmin(d[i, neg])]
        ap.append(d[i, p])
        an.append(d[i, n])
        pi.append(p)
        ni.append(n)
    return np.array(ap), np.array(an), np.array(pi), np.array(ni)


@pytest.mark.parametrize("eps", [0.1, 0.0])
def test_label_smoothed_ce(eps):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 5)).astype(np.float32) * 3
    labels = rng.integers(0, 5, 8).astype(np.int32)
    got = CrossEntropyLabelSmooth(5, eps)(ms.Tensor(logits), ms.Tensor(labels)).asnumpy()
    assert got == pytest.approx(np_ce_smooth(logits.astype(np.float64), labels, 5, eps), rel=1e-5)


def test_euclidean_and_mining():
    rng = np.random.default_rng(1)
    feat = rng.normal(size=(12, 7)).astype(np.float32)
    labels = np.repeat(np.arange(3), 4).astype(np.int32)
    d = euclidean_dist(ms.Tensor(feat), ms.Tensor(feat)).asnumpy()
    ref = np.sqrt(np.maximum(((feat[:, None].astype(np.float64) - feat[None]) ** 2).sum(-1), 1e-12))
    np.testing.assert_allclose(d, ref, atol=2e-3)
    ap, an, pi, ni = (t.asnumpy() for t in hard_example_mining(ms.Tensor(d), ms.Tensor(labels)))
    rap, ran, rpi, rni = np_batch_hard(feat.astype(np.float64), labels)
    np.testing.assert_array_equal(pi, rpi)
    np.testing.assert_array_equal(ni, rni)
    np.testing.assert_allclose(ap, rap, atol=2e-3)
    np.testing.assert_allclose(an, ran, atol=2e-3)


@pytest.mark.parametrize("m,n", [(8, 8), (4, 6)])
def test_paired_local_distance_is_dmli(m, n):
    rng = np.random.default_rng(m * 10 + n)
    x = rng.normal(size=(5, m, 16)).astype(np.float32)
    y = rng.normal(size=(5, n, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=2, keepdims=True)
    y /= np.linalg.norm(y, axis=2, keepdims=True)
    got = paired_local_dist(ms.Tensor(x), ms.Tensor(y)).asnumpy()
    want = np.array([ref_local_distance(x[i : i + 1], y[i : i + 1])[0, 0] for i in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_total_loss_matches_numpy():
    rng = np.random.default_rng(3)
    k, N = 4, 8
    labels = np.repeat(np.arange(k), 2).astype(np.int32)
    logits = rng.normal(size=(N, k)).astype(np.float32)
    feat = rng.normal(size=(N, 10)).astype(np.float32)
    local = rng.normal(size=(N, 4, 6)).astype(np.float32)
    local /= np.linalg.norm(local, axis=2, keepdims=True)
    total, id_l, g_l, l_l = (
        t.asnumpy() for t in AlignedLoss(k, 0.3, 0.1, True)(ms.Tensor(logits), ms.Tensor(feat), ms.Tensor(local), ms.Tensor(labels))
    )
    ap, an, pi, ni = np_batch_hard(feat.astype(np.float64), labels)
    want_g = np.maximum(ap - an + 0.3, 0).mean()
    lap = np.array([ref_local_distance(local[i : i + 1], local[pi[i] : pi[i] + 1])[0, 0] for i in range(N)])
    lan = np.array([ref_local_distance(local[i : i + 1], local[ni[i] : ni[i] + 1])[0, 0] for i in range(N)])
    want_l = np.maximum(lap - lan + 0.3, 0).mean()
    want_id = np_ce_smooth(logits.astype(np.float64), labels, k, 0.1)
    assert id_l == pytest.approx(want_id, rel=1e-5)
    assert g_l == pytest.approx(want_g, abs=1e-4)
    assert l_l == pytest.approx(want_l, abs=1e-4)
    assert total == pytest.approx(want_id + want_g + want_l, abs=2e-4)
