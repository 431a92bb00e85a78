"""Straightforward implementations used only to check the fast ones (loops on purpose)."""
import numpy as np


def ref_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    cmcs, aps = [], []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        kept = [g for g in order if g_pids[g] != -1 and not (g_pids[g] == q_pids[i] and g_camids[g] == q_camids[i])]
        rel = np.array([g_pids[g] == q_pids[i] for g in kept], dtype=float)
        if rel.sum() == 0:
            continue
        curve = np.zeros(max_rank)
        first = int(np.argmax(rel))
        curve[first:] = 1.0 if first < max_rank else 0.0
        cmcs.append(curve)
        precisions = [rel[: k + 1].sum() / (k + 1) for k in range(len(rel)) if rel[k]]
        aps.append(np.mean(precisions))
    return np.mean(cmcs, axis=0), float(np.mean(aps))


def ref_local_distance(x, y):
    out = np.zeros((len(x), len(y)))
    for i in range(len(x)):
        for j in range(len(y)):
            d = np.sqrt(np.maximum(((x[i][:, None, :].astype(np.float64) - y[j][None, :, :]) ** 2).sum(-1), 0))
            d = (np.exp(d) - 1) / (np.exp(d) + 1)
            m, n = d.shape
            acc = np.zeros((m, n))
            for a in range(m):
                for b in range(n):
                    if a == 0 and b == 0:
                        acc[a, b] = d[a, b]
                    elif a == 0:
                        acc[a, b] = acc[a, b - 1] + d[a, b]
                    elif b == 0:
                        acc[a, b] = acc[a - 1, b] + d[a, b]
                    else:
                        acc[a, b] = min(acc[a - 1, b], acc[a, b - 1]) + d[a, b]
            out[i, j] = acc[-1, -1]
    return out


def ref_re_ranking(q_g, q_q, g_g, k1=20, k2=6, lam=0.3):
    """The published algorithm, step by step, on the full (q+g)^2 matrix."""
    nq = q_g.shape[0]
    full = np.block([[q_q, q_g], [q_g.T, g_g]])
    full = np.power(full, 2).astype(np.float32)
    orig = (full / full.max(axis=0)).T
    n = len(orig)
    ranking = np.argsort(orig, axis=1, kind="stable")
    V = np.zeros((n, n), dtype=np.float32)

    def reciprocal(i, k):
        fwd = ranking[i, : k + 1]
        return np.array([c for c in fwd if i in ranking[c, : k + 1]], dtype=int)

    kh = int(np.around(k1 / 2.0))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = list(r)
        for c in r:
            rc = reciprocal(c, kh)
            if len(np.intersect1d(rc, r)) > 2.0 / 3.0 * len(rc):
                expanded.extend(rc)
        idx = np.unique(expanded)
        w = np.exp(-orig[i, idx])
        V[i, idx] = w / w.sum()
    if k2 != 1:
        V = np.stack([V[ranking[i, :k2]].mean(axis=0) for i in range(n)]).astype(np.float32)
    final = np.zeros((nq, n - nq), dtype=np.float32)
    for i in range(nq):
        for j in range(nq, n):
            s = np.minimum(V[i], V[j]).sum()
            final[i, j - nq] = (1 - s / (2 - s)) * (1 - lam) + orig[i, j] * lam
    return final
