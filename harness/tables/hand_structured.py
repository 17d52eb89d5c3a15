"""Hand checks of structured ops: the mathematics of torch's reductions,
normalizations, losses and attention in plain mpmath, with their
vector-Jacobian products derived by hand, at a structured point.

The second opinion the accuracy table's part 2 asks for: nothing here goes
through ``harness.exact``, the truth engine or ``references/``. Each entry of
``HAND`` is ``(f, vjp)``: ``f(*inputs)`` the outputs, ``vjp(*inputs, g)`` the
product of the cotangent ``g`` with the Jacobian, one array per input (None
for a label input). Inputs, outputs and cotangents are numpy arrays of
``mpf``. The forms below are the textbook ones, written where a term would
cancel so that it does not (``p_i (g_i - <g, p>)`` as ``p_i sum_j p_j (g_i -
g_j)``): the precision is raised until two evaluations agree anyway.
"""

from __future__ import annotations

import math
import re

import mpmath
import numpy as np
import torch

#: The least precision a hand evaluation starts at; ``precisions`` raises it with the inputs' span.
BITS = 400


def precisions(values) -> tuple[int, ...]:
    """The precisions a hand evaluation at the float inputs ``values`` tries, until two agree to 2**-64.

    Two precisions agreeing proves nothing where both are too short for a cancellation:
    beside a value of 2.5e291, two scores 1.6e-5 apart round to the same number at 400 and
    at 800 bits, and their difference reads as 0 twice. So the first precision holds every
    product of two inputs, and any sum of such products, exactly: twice the span of their
    exponents and of 1's (the formulas' constants: ``2p - 1`` keeps a subnormal ``p`` at
    1075 bits), plus 53 bits each and a margin."""
    exponents = [math.frexp(v)[1] for v in np.asarray(values, dtype=np.float64).ravel() if v and math.isfinite(v)]
    span = max(exponents + [1]) - min(exponents + [1])
    first = max(BITS, 2 * (span + 53) + 64)
    return tuple(first << k for k in range(4))


def _mp(a) -> np.ndarray:
    return np.vectorize(lambda v: mpmath.mpf(float(v)), otypes=[object])(np.asarray(a, dtype=np.float64))


def _rows(f, x: np.ndarray) -> np.ndarray:
    """``f(row) -> row or scalar`` along the last axis."""
    out = [f(list(r)) for r in x.reshape(-1, x.shape[-1])]
    return np.array(out, dtype=object).reshape(x.shape[:-1] + np.shape(out[0]))


def _lse(row):
    m = max(row)
    return m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in row))


def _softmax(row):
    # exp(v - m) / sum(exp(u - m)): v - lse(row) would lose lse's log of the sum beside a huge m.
    m = max(row)
    e = [mpmath.exp(v - m) for v in row]
    total = mpmath.fsum(e)
    return [x / total for x in e]


def _softmax_vjp_row(p, g):
    # p_i (g_i - <g, p>) = p_i sum_j p_j (g_i - g_j): no 1 - p to cancel where p_i ~ 1.
    return [p[i] * mpmath.fsum(p[j] * (g[i] - g[j]) for j in range(len(p))) for i in range(len(p))]


def _pairs(f, x, g):
    """``f(row, grow) -> row`` over the rows of ``x`` and ``g``."""
    out = [f(list(r), list(c)) for r, c in zip(x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1]))]
    return np.array(out, dtype=object).reshape(x.shape)


def softmax(x):
    return _rows(_softmax, x)


def softmax_vjp(x, g):
    return (_pairs(lambda r, c: _softmax_vjp_row(_softmax(r), c), x, g),)


def log_softmax(x):
    return _rows(lambda r: [v - _lse(r) for v in r], x)


def log_softmax_vjp(x, g):
    return (_pairs(lambda r, c: [c[i] - p * mpmath.fsum(c) for i, p in enumerate(_softmax(r))], x, g),)


def logsumexp(x):
    return _rows(_lse, x)


def logsumexp_vjp(x, g):
    return (np.array([[gi * p for p in _softmax(list(r))] for r, gi in
                      zip(x.reshape(-1, x.shape[-1]), np.reshape(g, -1))], dtype=object).reshape(x.shape),)


def _mean(v):
    return mpmath.fsum(v) / len(v)


def _normalized(row, eps):
    mu = _mean(row)
    sigma = mpmath.sqrt(_mean([(v - mu) ** 2 for v in row]) + eps)
    return [(v - mu) / sigma for v in row], sigma


def _normalized_vjp(row, g, eps):
    # (g - mean(g) - y mean(g y)) / sigma, the layer norm's backward
    y, sigma = _normalized(row, eps)
    mg, mgy = _mean(g), _mean([a * b for a, b in zip(g, y)])
    return [(gi - mg - yi * mgy) / sigma for gi, yi in zip(g, y)]


def layer_norm(x, eps=mpmath.mpf("1e-5")):
    return _rows(lambda r: _normalized(r, eps)[0], x)


def layer_norm_vjp(x, g, eps=mpmath.mpf("1e-5")):
    return (_pairs(lambda r, c: _normalized_vjp(r, c, eps), x, g),)


def batch_norm(x):
    """Training mode, x (N, C): each channel over the batch."""
    return layer_norm(x.T.copy()).T


def batch_norm_vjp(x, g):
    return (layer_norm_vjp(x.T.copy(), g.T.copy())[0].T,)


def rms_norm(x, eps=mpmath.mpf("1e-6")):
    return _rows(lambda r: [v / mpmath.sqrt(_mean([u * u for u in r]) + eps) for v in r], x)


def rms_norm_vjp(x, g, eps=mpmath.mpf("1e-6")):
    def row(r, c):
        rms = mpmath.sqrt(_mean([u * u for u in r]) + eps)
        mgx = _mean([a * b for a, b in zip(c, r)])
        return [ci / rms - ri * mgx / rms ** 3 for ci, ri in zip(c, r)]
    return (_pairs(row, x, g),)


def _norm(row):
    return mpmath.sqrt(mpmath.fsum(v * v for v in row))


def vector_norm(x):
    return _rows(_norm, x)


def vector_norm_vjp(x, g):
    return (np.array([[gi * v / _norm(list(r)) for v in r] for r, gi in
                      zip(x.reshape(-1, x.shape[-1]), np.reshape(g, -1))], dtype=object).reshape(x.shape),)


def normalize(x, eps=mpmath.mpf("1e-12")):
    return _rows(lambda r: [v / max(_norm(r), eps) for v in r], x)


def normalize_vjp(x, g):
    def row(r, c):
        n = _norm(r)
        y = [v / n for v in r]
        gy = mpmath.fsum(a * b for a, b in zip(c, y))
        return [(ci - yi * gy) / n for ci, yi in zip(c, y)]
    return (_pairs(row, x, g),)


def _var(row):
    mu = _mean(row)
    return mpmath.fsum((v - mu) ** 2 for v in row) / (len(row) - 1)


def var(x):
    return _rows(_var, x)


def var_vjp(x, g):
    return (np.array([[gi * 2 * (v - _mean(list(r))) / (len(r) - 1) for v in r] for r, gi in
                      zip(x.reshape(-1, x.shape[-1]), np.reshape(g, -1))], dtype=object).reshape(x.shape),)


def std(x):
    return _rows(lambda r: mpmath.sqrt(_var(r)), x)


def std_vjp(x, g):
    return (np.array([[gi * (v - _mean(list(r))) / ((len(r) - 1) * mpmath.sqrt(_var(list(r)))) for v in r]
                      for r, gi in zip(x.reshape(-1, x.shape[-1]), np.reshape(g, -1))],
                     dtype=object).reshape(x.shape),)


def cross_entropy(x, t):
    """Class indices t, logits x (N, C), the mean over rows."""
    return mpmath.fsum(_lse(list(r)) - r[int(c)] for r, c in zip(x, t)) / len(x)


def cross_entropy_vjp(x, t, g):
    rows = [[(p - (1 if j == int(c) else 0)) * g / len(x) for j, p in enumerate(_softmax(list(r)))]
            for r, c in zip(x, t)]
    return np.array(rows, dtype=object), None


def _sigmoid(v):
    return 1 / (1 + mpmath.exp(-v))


def _softplus(v):
    return mpmath.log1p(mpmath.exp(v)) if v < 0 else v + mpmath.log1p(mpmath.exp(-v))


def bce_with_logits(x, y):
    """mean(y softplus(-x) + (1 - y) softplus(x))."""
    return _mean([yi * _softplus(-xi) + (1 - yi) * _softplus(xi) for xi, yi in zip(x, y)])


def bce_with_logits_vjp(x, y, g):
    n = len(x)
    return (np.array([g * (_sigmoid(xi) - yi) / n for xi, yi in zip(x, y)], dtype=object),
            np.array([g * -xi / n for xi in x], dtype=object))


def gaussian_nll(x, t, v, eps=mpmath.mpf("1e-6")):
    return _mean([(mpmath.log(max(vi, eps)) + (xi - ti) ** 2 / max(vi, eps)) / 2 for xi, ti, vi in zip(x, t, v)])


def gaussian_nll_vjp(x, t, v, g, eps=mpmath.mpf("1e-6")):
    n = len(x)
    dx = [g * (xi - ti) / max(vi, eps) / n for xi, ti, vi in zip(x, t, v)]
    # The function is flat in v below eps: its derivative there is 0.
    dv = [g * (1 / vi - (xi - ti) ** 2 / vi ** 2) / 2 / n if vi > eps else mpmath.mpf(0)
          for xi, ti, vi in zip(x, t, v)]
    return (np.array(dx, dtype=object), np.array([-d for d in dx], dtype=object), np.array(dv, dtype=object))


def cosine_similarity(a, b):
    return _pairs_scalar(lambda r, s: mpmath.fsum(p * q for p, q in zip(r, s)) / (_norm(r) * _norm(s)), a, b)


def _pairs_scalar(f, a, b):
    out = [f(list(r), list(s)) for r, s in zip(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]))]
    return np.array(out, dtype=object).reshape(a.shape[:-1])


def cosine_similarity_vjp(a, b, g):
    def d(r, s, gi):
        na, nb = _norm(r), _norm(s)
        c = mpmath.fsum(p * q for p, q in zip(r, s)) / (na * nb)
        return [gi * (q / (na * nb) - c * p / (na * na)) for p, q in zip(r, s)]
    gs = np.reshape(g, -1)
    ra, rb = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return (np.array([d(list(r), list(s), gi) for r, s, gi in zip(ra, rb, gs)], dtype=object).reshape(a.shape),
            np.array([d(list(s), list(r), gi) for r, s, gi in zip(ra, rb, gs)], dtype=object).reshape(b.shape))


def _attention_parts(q, k, v, keep=None):
    d = mpmath.sqrt(q.shape[-1])
    scores = [[mpmath.fsum(a * b for a, b in zip(qi, kj)) / d if keep is None or keep(i, j) else mpmath.ninf
               for j, kj in enumerate(k)] for i, qi in enumerate(q)]
    p = [_softmax(row) for row in scores]
    return p, d


def attention(q, k, v, keep=None):
    """softmax(q k^T / sqrt(E)) v, q (L, E), k (S, E), v (S, Ev); scores where
    ``keep(i, j)`` is false are -inf (a mask)."""
    p, _ = _attention_parts(q, k, v, keep)
    return np.array([[mpmath.fsum(p[i][j] * v[j][c] for j in range(len(k))) for c in range(v.shape[1])]
                     for i in range(len(q))], dtype=object)


def attention_vjp(q, k, v, g, keep=None):
    p, d = _attention_parts(q, k, v, keep)
    L, S = len(q), len(k)
    dv = [[mpmath.fsum(p[i][j] * g[i][c] for i in range(L)) for c in range(v.shape[1])] for j in range(S)]
    dp = [[mpmath.fsum(g[i][c] * v[j][c] for c in range(v.shape[1])) for j in range(S)] for i in range(L)]
    ds = [_softmax_vjp_row(p[i], dp[i]) for i in range(L)]
    dq = [[mpmath.fsum(ds[i][j] * k[j][e] for j in range(S)) / d for e in range(q.shape[1])] for i in range(L)]
    dk = [[mpmath.fsum(ds[i][j] * q[i][e] for i in range(L)) / d for e in range(q.shape[1])] for j in range(S)]
    return tuple(np.array(a, dtype=object) for a in (dq, dk, dv))


def logcumsumexp(x):
    return _rows(lambda r: [_lse(r[:i + 1]) for i in range(len(r))], x)


def logcumsumexp_vjp(x, g):
    def row(r, c):
        prefixes = [_lse(r[:i + 1]) for i in range(len(r))]
        return [mpmath.fsum(c[i] * mpmath.exp(r[j] - prefixes[i]) for i in range(j, len(r))) for j in range(len(r))]
    return (_pairs(row, x, g),)


def _causal(i, j):
    return j <= i


def _unpadded(i, j):
    return j < 2   # the padding mask hides the last of 3 keys


def group_norm(x, groups=2):
    return layer_norm(x.reshape(x.shape[0], groups, -1)).reshape(x.shape)


def group_norm_vjp(x, g, groups=2):
    return (layer_norm_vjp(x.reshape(x.shape[0], groups, -1), g.reshape(x.shape[0], groups, -1))[0]
            .reshape(x.shape),)


def cdist(a, b):
    return np.array([[_norm([p - q for p, q in zip(ai, bj)]) for bj in b] for ai in a], dtype=object)


def cdist_vjp(a, b, g):
    # d |a_i - b_j| = (a_i - b_j) / |a_i - b_j| . (d a_i - d b_j)
    unit = [[[(p - q) / _norm([p - q for p, q in zip(ai, bj)]) for p, q in zip(ai, bj)] for bj in b] for ai in a]
    da = [[mpmath.fsum(g[i][j] * unit[i][j][e] for j in range(len(b))) for e in range(a.shape[1])]
          for i in range(len(a))]
    db = [[-mpmath.fsum(g[i][j] * unit[i][j][e] for i in range(len(a))) for e in range(a.shape[1])]
          for j in range(len(b))]
    return np.array(da, dtype=object), np.array(db, dtype=object)


def dist(a, b):
    return _norm([p - q for p, q in zip(a, b)])


def dist_vjp(a, b, g):
    d = dist(a, b)
    da = np.array([g * (p - q) / d for p, q in zip(a, b)], dtype=object)
    return da, -da


#: torch's pairwise_distance (inside triplet_margin_loss) adds eps to the difference.
PAIRWISE_EPS = mpmath.mpf("1e-6")


def triplet(a, p, n, margin=1):
    """mean over rows of max(|a - p + eps| - |a - n + eps| + margin, 0)."""
    return mpmath.fsum(max(_norm([x - y + PAIRWISE_EPS for x, y in zip(ai, pi)])
                           - _norm([x - y + PAIRWISE_EPS for x, y in zip(ai, ni)]) + margin, 0)
                       for ai, pi, ni in zip(a, p, n)) / len(a)


def triplet_vjp(a, p, n, g, margin=1):
    rows = len(a)
    da, dp, dn = [], [], []
    for ai, pi, ni in zip(a, p, n):
        u = [x - y + PAIRWISE_EPS for x, y in zip(ai, pi)]
        w = [x - y + PAIRWISE_EPS for x, y in zip(ai, ni)]
        nu, nw = _norm(u), _norm(w)
        on = 1 if nu - nw + margin > 0 else 0
        da.append([on * g * (x / nu - y / nw) / rows for x, y in zip(u, w)])
        dp.append([-on * g * x / nu / rows for x in u])
        dn.append([on * g * y / nw / rows for y in w])
    return tuple(np.array(d, dtype=object) for d in (da, dp, dn))


#: ATen's cosine_embedding_loss adds EPSILON to each squared norm.
EMBEDDING_EPS = mpmath.mpf("1e-12")


def _embedding_cos(r, s):
    A = mpmath.fsum(x * x for x in r) + EMBEDDING_EPS
    B = mpmath.fsum(x * x for x in s) + EMBEDDING_EPS
    return mpmath.fsum(x * y for x, y in zip(r, s)) / mpmath.sqrt(A * B), A, B


def cosine_embedding(a, b, y):
    """mean over rows of 1 - cos (y = 1) or max(cos, 0) (y = -1, margin 0)."""
    total = []
    for r, s, label in zip(a, b, y):
        c = _embedding_cos(list(r), list(s))[0]
        total.append(1 - c if label > 0 else max(c, 0))
    return mpmath.fsum(total) / len(a)


def cosine_embedding_vjp(a, b, y, g):
    da, db = [], []
    for r, s, label in zip(a, b, y):
        c, A, B = _embedding_cos(list(r), list(s))
        root = mpmath.sqrt(A * B)
        weight = -g if label > 0 else (g if c > 0 else 0)
        da.append([weight * (q / root - c * p / A) / len(a) for p, q in zip(r, s)])
        db.append([weight * (p / root - c * q / B) / len(a) for p, q in zip(r, s)])
    return np.array(da, dtype=object), np.array(db, dtype=object), None


#: Case name -> (f, vjp): the ops of cases/torch_structured.py with a hand formula.
HAND = {
    "torch.nn.functional.softmax": (softmax, softmax_vjp),
    "torch.nn.functional.log_softmax": (log_softmax, log_softmax_vjp),
    "torch.logsumexp": (logsumexp, logsumexp_vjp),
    "torch.nn.functional.cross_entropy": (cross_entropy, cross_entropy_vjp),
    "torch.nn.functional.binary_cross_entropy_with_logits": (bce_with_logits, bce_with_logits_vjp),
    "torch.nn.functional.gaussian_nll_loss": (gaussian_nll, gaussian_nll_vjp),
    "torch.nn.functional.layer_norm": (layer_norm, layer_norm_vjp),
    "torch.nn.functional.batch_norm": (batch_norm, batch_norm_vjp),
    "torch.nn.functional.rms_norm": (rms_norm, rms_norm_vjp),
    "torch.nn.functional.normalize": (normalize, normalize_vjp),
    "torch.linalg.vector_norm": (vector_norm, vector_norm_vjp),
    "torch.var": (var, var_vjp),
    "torch.std": (std, std_vjp),
    "torch.nn.functional.cosine_similarity": (cosine_similarity, cosine_similarity_vjp),
    "torch.nn.functional.scaled_dot_product_attention": (attention, attention_vjp),
    "torch.nn.functional.scaled_dot_product_attention(attn_mask)": (
        lambda q, k, v: attention(q, k, v, _unpadded), lambda q, k, v, g: attention_vjp(q, k, v, g, _unpadded)),
    "torch.nn.functional.scaled_dot_product_attention(is_causal=True)": (
        lambda q, k, v: attention(q, k, v, _causal), lambda q, k, v, g: attention_vjp(q, k, v, g, _causal)),
    "torch.nn.functional.instance_norm": (layer_norm, layer_norm_vjp),
    "torch.nn.functional.group_norm": (group_norm, group_norm_vjp),
    "torch.cdist": (cdist, cdist_vjp),
    "torch.dist": (dist, dist_vjp),
    "torch.nn.functional.triplet_margin_loss": (triplet, triplet_vjp),
    "torch.nn.functional.cosine_embedding_loss": (cosine_embedding, cosine_embedding_vjp),
    "torch.logcumsumexp": (logcumsumexp, logcumsumexp_vjp),
}


def parse(quantity: str, names) -> tuple[str, int, tuple[int, ...]]:
    """'d/dk[1, 2]' -> ('gradient', 1, (1, 2)); 'value[0]' -> ('value', 0, (0,)); 'value' -> ('value', 0, ())."""
    m = re.fullmatch(r"([^\[]+)(?:\[([\d, ]+)\])?", quantity)
    base, index = m.group(1), tuple(int(i) for i in m.group(2).split(",")) if m.group(2) else ()
    if base == "value":
        return "value", 0, index
    if base == "gradient":
        return "gradient", 0, index
    return "gradient", list(names).index(base.removeprefix("d/d")), index


def exact_at(name: str, point, quantity: str, names, cotangent: np.ndarray):
    """The hand formula's number for ``quantity`` at ``point``, at rising
    precision until two agree to 2**-64."""
    f, vjp = HAND[name]
    what, k, index = parse(quantity, names)
    previous = None
    for bits in precisions(np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in point])):
        with mpmath.workprec(bits):
            xs = [_mp(a) for a in point]
            if what == "value":
                out = f(*xs)
                value = out[index] if index else (out if not isinstance(out, np.ndarray) else out[()])
            else:
                g = _mp(cotangent)
                g = g if g.shape else g[()]
                value = vjp(*xs, g)[k][index]
            value = +value
        if previous is not None and (value == previous or abs(value - previous) <= abs(value) * 2 ** -64):
            return value
        previous = value
    return previous


def torch_at(case, point, dtype, quantity: str, names):
    """torch's number for ``quantity`` at ``point``: the case's forward and autograd, no harness in between
    but the cotangent (``inputs.samples._cotangent``, the one the harness hands every structured backward)
    and the thread count it certifies in (``claims.claimed.one_thread``: eager batch_norm's float32 variance
    at -8.5e37 is NaN on one thread and finite on two, a reduction split otherwise)."""
    from ..claims.claimed import one_thread
    from ..inputs.samples import _cotangent

    xs = [torch.tensor(np.asarray(a, dtype=np.float64), dtype=dtype, requires_grad=True) for a in point]
    with one_thread():
        y = case.forward(*xs)
    g = _cotangent(tuple(y.shape))
    what, k, index = parse(quantity, names)
    if what == "value":
        return float(y.detach().double()[index]), g
    with one_thread():
        grads = torch.autograd.grad(y, xs, torch.tensor(g, dtype=dtype), allow_unused=True)
    grad = grads[k]
    return (0.0 if grad is None else float(grad.double()[index])), g


def finite(point) -> bool:
    return all(np.all(np.isfinite(np.asarray(a, dtype=np.float64))) for a in point)
