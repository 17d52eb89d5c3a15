"""Linear algebra of the ball stand-in (``exact_ball``): ``det``, ``slogdet``,
``logdet``, ``inv``, ``solve``, ``cholesky``, ``eigvalsh``, ``svdvals``,
``matrix_exp``, ``cond``, ``trace`` and the matrix norms, over a whole grid of jets. Registered when imported
(``exact_ball_rules`` imports it); the mpmath stand-in's twins are in
``exact_linalg_ops``, whose Laplace expansion (``minors``) both use.

Why the digits survive:

* A minor is a sum of products of the entries (no division, no pivot): exact
  once the precision holds the products (159 bits for a 3 x 3 float64 matrix,
  so from the schedule's second step on), and otherwise within a radius of
  ``2**-prec`` of its largest term. So a singular matrix's determinant is an
  exact 0 and its derivative, the adjugate, exact; a determinant of 2**-50
  beside terms of 1 keeps ``prec - 50`` bits.
* ``det`` is that expansion on jets: its derivative is the cofactors', formed
  by the same sums, never ``det * A^-1``, which divides by 0 at a singular matrix.
* An entry of ``inv`` is one quotient of exact minors, one of ``solve`` a sum of
  their products by ``B`` over the determinant (Cramer); the derivatives
  ``-A^-1 dA A^-1`` and ``A^-1 (dB - dA X)`` are sums of products of those entries.
* A Cholesky entry is a quotient of minors and one square root (``L_ij =
  det(S[0..j-1, i; 0..j]) / sqrt(D_j D_{j+1})``): no ``S_jj - sum L_jk**2``
  to cancel near a semidefinite matrix.
* ``eigvalsh``'s eigenvalues are Arb's rigorous enclosures (Rump's method), its
  derivative ``l_i dS r_i`` with the enclosed eigenvectors (``L = R^-1``).
* ``svdvals`` are the square roots of the eigenvalues of the exactly formed Gram
  matrix; ``matrix_exp`` is Arb's enclosure, its derivative one more enclosed
  exponential of a block matrix.

Where no precision decides, the point is marked ``switching`` and handed over
at once: a determinant exactly 0 where a rule divides by it (``inv``, ``solve``,
the log of ``slogdet``), a leading minor <= 0 (no Cholesky factor: torch
raises), a repeated eigenvalue (decided exactly, over Q: the ordered
eigenvalues have a kink there), a zero singular value (its Gram's characteristic
polynomial has the root 0). A ball that merely holds 0 is ``undecided``: a
higher precision may separate it. Past ``MAX_ORDER`` a matrix raises
``BallUnsupported``.
"""

from __future__ import annotations

import functools

import flint
import numpy as np
import torch

from .ball_jet import ABSOLUTE, BallUnsupported, Jet, _div, _log, _mul, _neg, _sqrt, _add, _unary_rule
from .exact_ball import (
    _abs, _amax, _amin, arb, BallTensor, _map_parts, _matmul, _NOW, _operand, _order, _points, _register, _reshape,
    _sum, _transpose as _swap, _vector_norm)
from .exact_linalg_ops import (
    NAMES, check_order, cofactor_sign, cond_from, matrix_norm_from, minors, norm_from, with_info, without, zero_roots)

__all__: list[str] = []   # registers its rules when imported; nothing to call

_IS_ZERO = np.frompyfunc(lambda b: b.is_zero(), 1, 1)
_IS_EXACT = np.frompyfunc(lambda b: b.is_exact(), 1, 1)


def _marks():
    return _NOW[-1].marks


def _n() -> int:
    return _NOW[-1].n


# -- a stand-in's matrices as arrays ------------------------------------------------------------------------------

class _Matrices:
    """A stand-in's jet as arrays of its matrices: ``v`` and each direction's
    part (None where 0) of shape ``(Q, rows, cols)``, ``Q`` running over the
    points and the batch dims (``lead``: those, points first)."""

    def __init__(self, t: BallTensor, lead_points: int | None = None):
        if len(t.pshape) < 2:
            raise BallUnsupported(f"a matrix function of a tensor of shape {t.pshape}")
        jet = _map_parts(t.jet, lambda a: a, t.pshape)
        parts = [jet.v] + [d for d in jet.d if d is not None]
        points = lead_points or max(p.shape[0] for p in parts)
        self.lead = (points,) + tuple(t.pshape[:-2])
        self.shape = tuple(t.pshape[-2:])

        def flat(a):
            return None if a is None else np.broadcast_to(a, self.lead + self.shape).reshape((-1,) + self.shape)
        self.v = flat(jet.v)
        self.d = [flat(d) for d in jet.d]

    @property
    def q(self) -> int:
        return self.v.shape[0]

    def entry(self, i: int, j: int, directions: bool = True) -> Jet:
        """Entry ``(i, j)`` as a jet over ``Q``, a part that is 0 at every point as None
        (an input's entry moves along its own direction only)."""
        if not directions:
            return Jet(self.v[:, i, j], ())
        d = []
        for part in self.d:
            e = None if part is None else part[:, i, j]
            d.append(None if e is None or np.all(_IS_ZERO(e).astype(bool)) else e)
        return Jet(self.v[:, i, j], tuple(d))

    def out(self, jet: Jet, shape: tuple) -> BallTensor:
        """A jet over ``Q`` (parts of shape ``(Q,) + shape``) as a stand-in of the batch's shape."""
        def back(a):
            if a is None:
                return None
            a = np.broadcast_to(a, (self.q,) + shape) if isinstance(a, np.ndarray) else np.full((self.q,) + shape, a)
            return a.reshape(self.lead + shape)
        return BallTensor(Jet(back(jet.v), tuple(back(d) for d in jet.d)), self.lead[1:] + shape)

    def per_point(self, mask: np.ndarray) -> np.ndarray:
        """A per-``Q`` flag as per-point marks (any matrix of the point's batch)."""
        return _points(mask.reshape(self.lead))


def _square(name: str, t: BallTensor) -> int:
    if len(t.pshape) < 2 or t.pshape[-1] != t.pshape[-2]:
        raise RuntimeError(f"{name}: A must be batches of square matrices, but they are {t.pshape}")
    check_order(name, t.pshape[-1], BallUnsupported)
    return t.pshape[-1]


def evaluate_minors(m: _Matrices, directions: bool = True):
    """``minor(rows, cols)`` of ``m``'s matrices as jets (values only: ``directions`` False)."""
    n = _n() if directions else 0
    entry = functools.cache(lambda i, j: m.entry(i, j, directions))
    return minors(entry, _mul, _add, _neg, Jet.constant(1, n))


def _mark(m: _Matrices, where: np.ndarray, undecided: np.ndarray | None = None) -> None:
    _marks().switching[m.per_point(where)] = True
    if undecided is not None:
        _marks().undecided[m.per_point(undecided)] = True


def _nonzero(m: _Matrices, det) -> None:
    """A determinant exactly 0 (no inverse at any precision) is a switching
    point; one whose ball holds 0 is undecided."""
    holds = np.array([b.contains(0) for b in det], dtype=bool)
    exact = _IS_EXACT(det).astype(bool)
    _mark(m, holds & exact, holds & ~exact)


# -- determinants -------------------------------------------------------------------------------------------------

def _det(input, *, out=None):
    t = _operand(input)
    n = _square("linalg.det", t)
    m = _Matrices(t)
    full = tuple(range(n))
    return m.out(evaluate_minors(m)(full, full), ())


def _log_abs(det: BallTensor) -> BallTensor:
    """``log|det|``: the sign decided by the ball (an exact 0 is a switching point)."""
    def f(a: Jet) -> Jet:
        sign = _order(a.v, arb(0))
        return _unary_rule(_log)(Jet(np.where(sign < 0, -a.v, a.v), tuple(
            None if d is None else (d if ABSOLUTE[0] else np.where(sign < 0, -d, d)) for d in a.d)))
    return BallTensor(f(det.jet), det.pshape)


def _slogdet(input, *, out=None):
    det = _det(input)
    sign = np.asarray(_order(det.jet.v, arb(0)), dtype=np.int8)   # marked where the ball holds 0
    signs = np.empty(sign.shape, dtype=object)
    signs.reshape(-1)[:] = [arb(int(s)) for s in sign.reshape(-1)]
    return torch.return_types.linalg_slogdet((BallTensor(Jet(signs, (None,) * _n()), det.pshape), _log_abs(det)))


def _logdet(input):
    """``log det``: an exact 0 determinant is a switching point (``_order``), a
    negative one too (torch's NaN, no real log at any precision: the mpmath
    stand-in gives the NaN)."""
    det = _det(input)
    sign = _order(det.jet.v, arb(0))
    _marks().switching[_points(sign < 0)] = True
    return BallTensor(_unary_rule(_log)(det.jet), det.pshape)


# -- inverses and solves ------------------------------------------------------------------------------------------

def _adjugate(m: _Matrices, n: int):
    """``(adj A, det A)`` of the values, over ``Q``: exact minors (a singular
    determinant marked, ``_nonzero``)."""
    minor = evaluate_minors(m, directions=False)
    full = tuple(range(n))
    det = minor(full, full).v
    _nonzero(m, det)
    adj = np.empty((m.q, n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            c = minor(without(n, j), without(n, i)).v
            adj[:, i, j] = c if cofactor_sign(i, j) > 0 else -c
    return adj, det


def _per_matrix(det):
    return det[:, None, None]


def _mm(a, b):
    return np.matmul(abs(a), abs(b)) if ABSOLUTE[0] else np.matmul(a, b)


def _inv(input, *, out=None):
    t = _operand(input)
    n = _square("linalg.inv", t)
    m = _Matrices(t)
    adj, det = _adjugate(m, n)
    x = adj / _per_matrix(det)   # Cramer: one quotient of exact minors an entry
    # dX = -X dA X; absolute paths |X| |dA| |X|.
    d = tuple(None if part is None else (_mm(_mm(x, part), x) if ABSOLUTE[0] else -np.matmul(np.matmul(x, part), x))
              for part in m.d)
    return m.out(Jet(x, d), (n, n))


def _solve(A, B, *, left=True, out=None):
    a, b = _operand(A), _operand(B)
    n = _square("linalg.solve", a)
    if len(a.pshape) != 2 or len(b.pshape) not in (1, 2):
        raise BallUnsupported("linalg.solve of batches (one matrix A, B a vector or a matrix)")
    if not left:
        if len(b.pshape) != 1:
            return _transpose(_solve(_transpose(a), _transpose(b)))
        raise RuntimeError("linalg.solve: vector broadcasting of the left hand side is not supported for left=False")
    ma = _Matrices(a)
    column = _reshape(b, n, -1)
    mb = _Matrices(column)
    points = max(ma.lead[0], mb.lead[0])
    ma, mb = _Matrices(a, points), _Matrices(column, points)
    adj, det = _adjugate(ma, n)
    inverse = adj / _per_matrix(det)
    x = np.matmul(adj, mb.v) / _per_matrix(det)   # Cramer's numerators over the determinant
    # dX = A^-1 (dB - dA X); absolute paths |A^-1| (|dB| + |dA| |X|).
    d = []
    for da, db in zip(ma.d, mb.d):
        if da is None and db is None:
            d.append(None)
            continue
        if ABSOLUTE[0]:
            inner = (0 if db is None else abs(db)) + (0 if da is None else _mm(da, x))
            d.append(_mm(inverse, inner))
        else:
            inner = (0 if db is None else db) - (0 if da is None else np.matmul(da, x))
            d.append(np.matmul(inverse, inner))
    out = ma.out(Jet(x, tuple(d)), (n, mb.shape[1]))
    return _reshape(out, *b.pshape)


def _transpose(t):
    return _swap(t, -2, -1)


# -- Cholesky -----------------------------------------------------------------------------------------------------

def _hermitian(t: BallTensor, upper: bool) -> BallTensor:
    """The symmetric matrix LAPACK reads from one triangle of every part."""
    n = t.pshape[-1]
    rows, cols = np.indices((n, n))
    keep = (rows <= cols) if upper else (rows >= cols)

    def mirrored(a):
        return np.where(keep, a, np.swapaxes(a, -1, -2))
    return BallTensor(_map_parts(t.jet, mirrored, t.pshape), t.pshape)


def _cholesky(input, upper=False, *, out=None):
    t = _operand(input)
    n = _square("linalg.cholesky", t)
    m = _Matrices(_hermitian(t, upper))
    minor = evaluate_minors(m)
    d = [minor(tuple(range(j)), tuple(range(j))) for j in range(n + 1)]
    for j in range(1, n + 1):
        sign = np.array([_sign(b) for b in np.broadcast_to(d[j].v, (m.q,))], dtype=np.int8)
        # <= 0 decided: not positive definite, no factor at any precision (torch raises).
        _mark(m, sign <= 0, sign == 2)
    entries = {}
    for j in range(n):
        entries[j, j] = _unary_rule(_sqrt)(_div(d[j + 1], d[j]))
        if j + 1 < n:
            scale = _unary_rule(_sqrt)(_mul(d[j], d[j + 1]))
            for i in range(j + 1, n):
                entries[i, j] = _div(minor(tuple(range(j)) + (i,), tuple(range(j + 1))), scale)
    lower = _assemble(entries, m.q, n)
    if upper:
        lower = Jet(np.swapaxes(lower.v, -1, -2), tuple(None if x is None else np.swapaxes(x, -1, -2) for x in lower.d))
    return m.out(lower, (n, n))


def _sign(b) -> int:
    """-1, 0 (exactly) or 1; 2 where the ball holds 0 but is not exact."""
    if b.is_zero():
        return 0
    if b.contains(0):
        return 2
    return 1 if b > 0 else -1


def _assemble(entries: dict, q: int, n: int) -> Jet:
    """An ``n x n`` jet over ``Q`` from jets of some entries (the rest exactly 0)."""
    zero = arb(0)

    def part(get):
        pieces = {k: get(e) for k, e in entries.items()}
        if all(p is None for p in pieces.values()):
            return None
        a = np.full((q, n, n), zero, dtype=object)
        for (i, j), p in pieces.items():
            if p is not None:
                a[:, i, j] = p
        return a
    return Jet(part(lambda e: e.v), tuple(part(lambda e, k=k: e.d[k]) for k in range(_n())))


# -- eigenvalues of a symmetric matrix ------------------------------------------------------------------------------

def _eigvalsh(input, UPLO="L", *, out=None):
    return _symmetric_eigenvalues(_operand(input), UPLO == "U")[0]


def _symmetric_eigenvalues(t: BallTensor, upper: bool):
    """``eigvalsh``'s stand-in, with the matrices (``_Matrices``) and each one's
    characteristic polynomial over Q (None where an entry is not exact) that
    decided it, for ``svdvals`` to read its zero roots from."""
    n = _square("linalg.eigvalsh", t)
    m = _Matrices(_hermitian(t, upper))
    values = np.full((m.q, n), arb("nan"), dtype=object)
    parts = [None if d is None else np.full((m.q, n), arb(0), dtype=object) for d in m.d]
    repeated, undecided = np.zeros(m.q, dtype=bool), np.zeros(m.q, dtype=bool)
    polys = [_charpoly(m.v[k]) for k in range(m.q)]
    for k, poly in enumerate(polys):
        found = _eigen(m.v[k], n)
        if found is None:
            repeated[k] = poly is not None and _repeated(poly)
            undecided[k] = not repeated[k]
            continue
        lam, left, right = found
        values[k] = [_snapped(v, poly) for v in lam]
        for part, d in zip(parts, m.d):
            if part is not None:
                part[k] = _eigen_derivative(left, right, d[k], n)
    _mark(m, repeated, undecided)
    return m.out(Jet(values, tuple(parts)), (n,)), m, polys


def _eigen(v: np.ndarray, n: int):
    """Ascending eigenvalue balls of the symmetric ``v`` with ``L`` and ``R``
    (rows of ``L`` ordered alike), or None where Arb cannot isolate them or their
    real parts overlap."""
    a = flint.acb_mat([[flint.acb(v[i, j]) for j in range(n)] for i in range(n)])
    try:
        lam, left, right = a.eig(left=True, right=True, algorithm="rump")
    except (ValueError, ZeroDivisionError):
        return None
    real = [e.real for e in lam]
    order = sorted(range(n), key=lambda i: real[i].mid())
    for i, j in zip(order, order[1:]):
        if not real[i] < real[j]:
            return None
    return [real[i] for i in order], [[left[i, c] for c in range(n)] for i in order], \
        [[right[r, i] for r in range(n)] for i in order]


def _fmpq(b) -> flint.fmpq:
    m, e = b.mid().man_exp()
    return flint.fmpq(int(m)) * flint.fmpq(2) ** int(e)


def _charpoly(v: np.ndarray):
    """The characteristic polynomial over Q of a matrix of exact balls (None if one is not exact)."""
    if not all(b.is_exact() and b.is_finite() for b in v.reshape(-1)):
        return None
    return flint.fmpq_mat([[_fmpq(b) for b in row] for row in v]).charpoly()


def _repeated(poly) -> bool:
    """A repeated root: shared with the derivative (exactly, over Q)."""
    return poly.gcd(poly.derivative()).degree() > 0


#: Bits of an eigenvalue's midpoint tried as its exact value (``_snapped``).
SNAP_BITS = 80


def _snapped(ball, poly):
    """The eigenvalue in ``ball`` as an exact ball where it is a short dyadic
    number: the ball holds one eigenvalue (Rump's isolation), so a number in
    it at which the characteristic polynomial is exactly 0 is that eigenvalue.
    Without it, an eigenvalue of ``M diag(d) M^T`` on a narrower format's
    midpoint (4.640625 in bfloat16) would never round once, at any precision."""
    if poly is None or ball.is_exact() or not ball.is_finite():
        return ball
    man, exp = (int(x) for x in ball.mid().man_exp())
    shift = max(0, abs(man).bit_length() - SNAP_BITS)
    man, exp = (man + (1 << shift >> 1)) >> shift, exp + shift   # to nearest (Arb's own rounding is toward 0)
    candidate = arb(man) * arb(2) ** exp   # exact
    if ball.contains(candidate) and poly(flint.fmpq(man) * flint.fmpq(2) ** exp) == 0:
        return candidate
    return ball


def _eigen_derivative(left, right, d: np.ndarray, n: int) -> list:
    """``l_i dS r_i`` per eigenvalue (real part: the imaginary one holds 0); absolute
    paths ``|l_i| |dS| |r_i|``."""
    out = []
    for l, r in zip(left, right):
        total = flint.acb(0)
        for a in range(n):
            for b in range(n):
                if not d[a, b].is_zero():
                    term = l[a] * d[a, b] * r[b]
                    total += abs(l[a]) * abs(d[a, b]) * abs(r[b]) if ABSOLUTE[0] else term
        out.append(total.real if isinstance(total, flint.acb) else total)
    return out


# -- singular values ------------------------------------------------------------------------------------------------

def _svdvals(A, *, driver=None, out=None):
    """The square roots of the eigenvalues of the Gram matrix of the smaller side,
    descending. The Gram's entries are sums of products of the entries, exact once
    the precision holds them, so its eigenvalues are Arb's enclosures of exact
    numbers (``sigma_min**2`` is resolved at any condition by raising the
    precision); a zero singular value (the Gram's characteristic polynomial has the
    root 0, decided over Q) is a kink, ``sigma = |.|`` across it: marked, as a
    repeated one is by ``_eigvalsh``."""
    t = _operand(A)
    if len(t.pshape) < 2:
        raise RuntimeError(f"linalg.svdvals: The input tensor A must have at least 2 dimensions, got {t.pshape}")
    rows, cols = t.pshape[-2:]
    check_order("linalg.svdvals", min(rows, cols), BallUnsupported)
    gram = _matmul(_transpose(t), t) if rows >= cols else _matmul(t, _transpose(t))
    w, m, polys = _symmetric_eigenvalues(gram, upper=False)
    _mark(m, np.array([p is not None and zero_roots(p) > 0 for p in polys], dtype=bool))
    root = _unary_rule(_sqrt)(w.jet)
    return BallTensor(_map_parts(root, lambda a: a[..., ::-1], w.pshape), w.pshape)


# -- the matrix exponential -----------------------------------------------------------------------------------------

def _arb_mat(a: np.ndarray) -> flint.arb_mat:
    return flint.arb_mat(a.tolist())


def _matrix_exp(input):
    """Arb's rigorous ``exp`` of each matrix; the derivative along ``E`` the upper
    right block of ``exp([[A, E], [0, A]])`` (Najfeld and Havel, *Derivatives of the
    matrix exponential*, 1995): one enclosed exponential a direction, no difference
    quotient. Absolute paths: the same block of ``|A|`` and ``|E|``, whose series
    sums the magnitudes of the Frechet derivative's terms."""
    t = _operand(input)
    n = _square("matrix_exp", t)
    m = _Matrices(t)
    zero = np.zeros((n, n), dtype=object)
    zero[:] = arb(0)
    values = np.empty((m.q, n, n), dtype=object)
    parts = [None if d is None else np.empty((m.q, n, n), dtype=object) for d in m.d]
    for k in range(m.q):
        a = m.v[k]
        values[k] = np.array(_arb_mat(a).exp().tolist(), dtype=object)
        base = abs(a) if ABSOLUTE[0] else a
        for part, d in zip(parts, m.d):
            if part is not None:
                e = abs(d[k]) if ABSOLUTE[0] else d[k]
                block = _arb_mat(np.block([[base, e], [zero, base]])).exp()
                part[k] = np.array(block.tolist(), dtype=object)[:n, n:]
    return m.out(Jet(values, tuple(parts)), (n, n))


# -- trace and norms ------------------------------------------------------------------------------------------------

def _trace(input):
    t = _operand(input)
    if len(t.pshape) != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {len(t.pshape)}")
    jet = _map_parts(t.jet, lambda a: np.trace(a, axis1=-2, axis2=-1), t.pshape)
    jet.m1 = None
    return BallTensor(jet, ())


def _squeezed(t: BallTensor, dims) -> BallTensor:
    t = _operand(t)
    dims = {d % len(t.pshape) for d in dims}
    return _reshape(t, *[s for i, s in enumerate(t.pshape) if i not in dims])


def _matrix_norm(*args, **kwargs):
    try:
        return _MATRIX_NORM(*args, **kwargs)
    except NotImplementedError as exc:
        raise BallUnsupported(str(exc)) from None


_MATRIX_NORM = matrix_norm_from(_vector_norm, _abs, _sum, _amax, _amin, _squeezed, _svdvals,
                                lambda A: len(_operand(A).pshape))


def _register_all():
    def only(impl, name, *spaces):
        _register(impl, name, namespaces=spaces)

    def info(out):
        return BallTensor(Jet.constant(0, _n()), out.pshape[:-2])
    only(with_info(_inv, torch.return_types.linalg_inv_ex, info), "inv_ex", torch.linalg)
    only(with_info(_cholesky, torch.return_types.linalg_cholesky_ex, info), "cholesky_ex", torch.linalg)
    only(with_info(_solve, torch.return_types.linalg_solve_ex, lambda out: BallTensor(Jet.constant(0, _n()), ())),
         "solve_ex", torch.linalg)
    impls = {"det": _det, "slogdet": _slogdet, "logdet": _logdet, "inv": _inv, "inverse": _inv, "solve": _solve,
             "cholesky": _cholesky, "eigvalsh": _eigvalsh, "trace": _trace, "matrix_norm": _matrix_norm,
             "svdvals": _svdvals, "matrix_exp": _matrix_exp}
    for name, spaces in NAMES.items():
        only(impls[name], name, *spaces)
    only(norm_from(_vector_norm, _matrix_norm, lambda A: len(_operand(A).pshape)), "norm", torch.linalg)
    only(cond_from(_svdvals, _matrix_norm, _inv), "cond", torch.linalg)


_register_all()
