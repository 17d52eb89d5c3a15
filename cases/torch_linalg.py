"""PyTorch's differentiable linear algebra (determinants, inverses, solves,
Cholesky, symmetric eigenvalues, matrix norms, products), certified as it ships:
the accuracy table's part 3 (issue 35).

One case per op and calling convention, on the matrix patterns of
``harness.inputs.matrix_patterns`` (``matrix_grid``: the smallest singular
value, the condition number, rank-deficient, SPD near semidefinite, close
eigenvalues, triangular, scales, specials), with the ``kind`` of matrix where
the op is defined (``invertible`` for inv and solve, ``spd`` for Cholesky,
``symmetric`` for eigh). Ops on vectors only run on the structured default grid
of their shapes. Autograd's own backward is the claim. The references are the
mathematical functions evaluated exactly by ``harness.exact``: torch's own op
where ``exact`` implements it, else the textbook formula in ops it does
(``pinv`` of an invertible matrix as ``inv``, ``cholesky_solve`` as ``solve(L
L^T, B)``). The expectations are the measured verdicts (torch 2.13 on CPU).
Deselected from a plain ``pytest cases/``: ``pytest cases/torch_linalg.py
--torch-ops``. The table is docs/torch_linalg.md (``python -m
harness.tables.accuracy_table --module cases.torch_linalg --out
docs/torch_linalg.md``), with ``FINDINGS`` and ``HARNESS_NOTES`` below.

Judged functions where the mathematics has no single answer (each smooth where
the op's own outputs are not, and each a polynomial or an exact op of A):

* ``eigh``'s eigenvectors are defined up to sign (and, at a repeated eigenvalue,
  up to a rotation): judged through ``V diag(lambda**2) V^T`` (``S @ S``);
* ``svd``'s singular vectors likewise, and ``svd_lowrank``'s and
  ``pca_lowrank``'s: through ``U diag(S**3) V^T`` (``A A^T A``; the centred
  ``C C^T C`` for ``pca_lowrank``), their random sketch seeded alike at every call;
* ``eig``'s eigenvectors, defined up to any complex scaling: through
  ``V diag(w**2) V^-1`` (``A @ A``); ``eigvals`` through the power sums
  ``sum w, sum w**2, sum w**3`` (``tr A, tr A**2, tr A**3``), symmetric in the
  eigenvalues and smooth at repeated and defective ones;
* ``qr``'s factors are unique once R's diagonal is positive (a full-rank A): R
  so signed is ``cholesky(A^T A)^T``, Q so signed ``A R^-1``;
* ``lu``'s factors depend on the pivots, which change with A: judged through
  the determinant ``sign(P) prod(diag U)``, the factors' product ``P L U`` (= A),
  and ``lu_solve`` (= ``solve``); ``lu_unpack`` through ``L U`` at fixed pivots;
* ``slogdet`` on its ``logabsdet`` (its sign is piecewise constant).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import harness
from harness import certified, convicted
from harness import matrix_grid
from harness.inputs.patterns import Point
from harness.judging.expectations import with_compiled
from harness.tables.findings import Finding
from harness.tables.compiled_findings import HALF_IN_DECOMPOSITION, HALF_IN_FLOAT, CompiledFinding

exact = harness.exact

#: The page's title (harness.tables.accuracy_table).
TITLE = "The accuracy table of PyTorch's autograd, part 3: linear algebra"

#: Deselected unless the run asks for the sweeps with --torch-ops (harness/pytest/plugin.py).
pytestmark = pytest.mark.torch_ops

#: Ops with no float16 or bfloat16 kernel (or backward) on CPU, tried (torch 2.13): LAPACK's
#: (det, slogdet, logdet, inv, pinv, solve, lstsq, solve_triangular, cholesky and its inverse
#: and solve, eigh) and vander; trace, the matrix norms and the products have them.
NO_HALF = (torch.float64, torch.float32)
ALL = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


#: The measured verdicts on CPU (torch 2.13; ``pytest cases/torch_linalg.py --torch-ops
#: --devices cpu``), per case and dtype ("*": the others); a case not listed is certified.
#: Why each is convicted: ``FINDINGS``.
EXPECT = {
    "torch.linalg.det": {"float64": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
                         "float32": convicted("lost-digits", "non-finite", "silent-zero")},
    "torch.det": {"float64": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
                  "float32": convicted("lost-digits", "non-finite", "silent-zero")},
    "torch.linalg.slogdet": {"float64": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
                             "float32": convicted("finite-vs-inf", "lost-digits", "non-finite", "silent-zero")},
    "torch.logdet": {"float64": convicted("lost-digits", "non-finite"), "float32": convicted("non-finite")},
    "torch.linalg.inv": convicted("non-finite"),
    "torch.linalg.inv_ex": {"float64": convicted("lost-digits", "non-finite", "silent-zero"),
                            "float32": convicted("non-finite", "silent-zero")},
    "torch.inverse": convicted("non-finite"),
    "torch.linalg.pinv": {"float64": convicted("lost-digits", "non-finite"),
                          "float32": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")},
    "torch.pinverse": {"float64": convicted("lost-digits", "non-finite"),
                       "float32": convicted("lost-digits", "non-finite", "wrong-sign")},
    "torch.linalg.tensorinv": convicted("non-finite"),
    "torch.linalg.solve": convicted("non-finite"),
    "torch.linalg.solve_ex": {"float64": convicted("lost-digits", "non-finite"), "float32": convicted("non-finite")},
    "torch.linalg.tensorsolve": convicted("non-finite"),
    "torch.linalg.lstsq": {"float64": convicted("lost-digits", "non-finite"),
                           "float32": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")},
    "torch.linalg.solve_triangular": convicted("non-finite", "wrong-sign"),
    "torch.triangular_solve": convicted("non-finite", "wrong-sign"),
    "torch.linalg.cholesky_ex": {"float64": convicted("lost-digits", "wrong-sign"), "float32": convicted("wrong-sign")},
    "torch.cholesky_inverse": convicted("lost-digits", "non-finite", "silent-zero"),
    "torch.cholesky_solve": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.linalg.eigvalsh": {"float64": convicted("lost-digits", "wrong-sign"), "float32": convicted("wrong-sign")},
    "torch.linalg.eigh(eigenvalues)": {"float64": convicted("lost-digits", "wrong-sign"),
                                       "float32": convicted("wrong-sign")},
    "torch.linalg.eigh(V diag(w**2) V^T)": convicted("lost-digits", "non-finite"),
    "torch.linalg.svdvals": convicted("lost-digits", "silent-zero", "wrong-sign"),
    "torch.linalg.svd(U diag(S**3) Vh)": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.svd(U diag(S**3) V^T)": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.svd_lowrank(U diag(S**3) V^T)": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.pca_lowrank(U diag(S**3) V^T)": {"float64": convicted("lost-digits", "non-finite", "wrong-sign"), "float32": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")},
    "torch.linalg.matrix_norm(ord=2)": {"float64": convicted("lost-digits", "silent-zero"), "float32": convicted("silent-zero", "wrong-sign")},
    "torch.linalg.matrix_norm(ord=-2)": convicted("lost-digits", "silent-zero", "wrong-sign"),
    "torch.linalg.matrix_norm(ord='nuc')": {"float64": convicted("lost-digits", "silent-zero"), "float32": convicted("lost-digits", "silent-zero", "wrong-sign")},
    "torch.linalg.cond": {"float64": convicted("finite-vs-inf", "lost-digits", "non-finite", "wrong-sign"), "float32": convicted("lost-digits", "non-finite", "wrong-sign")},
    "torch.linalg.eig(V diag(w**2) V^-1)": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.linalg.eigvals(power sums)": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.matrix_exp": {"float64": convicted("lost-digits"), "float32": convicted("non-finite"),
                         "float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow", "wrong-sign"), "bfloat16": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")},
    "torch.linalg.qr(R, diagonal > 0)": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.qr(Q, diagonal of R > 0)": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.linalg.householder_product(near a projector)": convicted("lost-digits", "non-finite"),
    "torch.linalg.householder_product": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.ormqr": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.linalg.lu_factor(det from LU)": convicted("non-finite", "silent-zero"),
    "torch.linalg.lu_factor_ex(det from LU)": convicted("non-finite", "silent-zero"),
    "torch.lu(det from LU)": convicted("non-finite", "silent-zero"),
    "torch.linalg.lu(P L U)": convicted("lost-digits", "non-finite", "silent-zero"),
    "torch.linalg.lu_solve": convicted("non-finite"),
    "torch.lu_solve": convicted("non-finite"),
    "torch.lu_unpack(L U)": convicted("non-finite"),
    "torch.sparse.mm": convicted("silent-zero"),
    "torch.logdet(custom Cholesky Function, jitter 1e-6)": convicted("lost-digits"),
    "torch.linalg.matrix_norm": {"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow"),
                                "*": convicted("non-finite", "silent-zero")},
    "torch.linalg.matrix_norm(ord=1)": convicted("lost-digits"),
    "torch.linalg.matrix_norm(ord=inf)": convicted("lost-digits"),
    "torch.linalg.norm": {"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow"),
                         "*": convicted("non-finite", "silent-zero")},
    "torch.bmm": convicted("non-finite"),
    "torch.linalg.multi_dot": convicted("non-finite"),
    "torch.matrix_power(2)": convicted("non-finite"),
    "torch.linalg.matrix_power(3)": {"float16": convicted("non-finite", "wrong-sign"), "*": convicted("non-finite")},
    "torch.kron": convicted("non-finite"),
    "torch.tensordot": {"float16": certified(), "*": convicted("non-finite")},
    "torch.nn.functional.bilinear": convicted("non-finite"),
    "torch.dot": convicted("non-finite"),
    "torch.vdot": convicted("non-finite"),
    "torch.inner": convicted("non-finite"),
    "torch.outer": {"float16": convicted("non-finite"),
                    "bfloat16": convicted("non-finite"),
                    "*": convicted("non-finite", "silent-zero")},
    "torch.linalg.vecdot": convicted("non-finite"),
    "torch.cross": convicted("non-finite"),
    "torch.linalg.cross": convicted("non-finite"),
    "torch.linalg.vander": convicted("lost-digits", "nan-swallowed", "non-finite"),
}


def op(name: str, forward, reference=None, grid=None, shape=None, dtypes=NO_HALF, **options) -> harness.Case:
    """``torch.<name>`` on ``grid`` (matrix patterns) or the default grid of
    ``shape``; the reference is ``forward`` evaluated exactly unless given; the
    expectation is ``EXPECT``'s."""
    return harness.Case(f"torch.{name}", forward, reference or exact(forward), grid=grid, shape=shape,
                        expect=EXPECT.get(f"torch.{name}", certified()), dtypes=dtypes, **options)


def _finite_below(limit):
    """Matrices whose entries are finite and below ``limit`` (LAPACK's eigh raises at 1e308)."""
    return lambda A: bool(np.all(np.isfinite(A)) and np.abs(A).max() < limit)


def _well_inside(kind: str, margin: float = 1e-8):
    """Finite matrices well inside the domain of a raising op: a condition number
    (``"lu"``) or a ratio of smallest to largest eigenvalue (``"spd"``) within
    ``margin``, so that neither the rounded matrix nor a finite-difference step
    around it meets an exact zero or negative pivot, where torch's inv, solve and
    cholesky raise and a raising forward stops the case. Their ``_ex`` twins run on
    the whole grid and carry the edge."""
    def inside(A) -> bool:
        if not np.all(np.isfinite(A)):
            return False
        if kind == "lu":
            s = np.linalg.svd(A, compute_uv=False)
            return bool(s[-1] > margin * s[0])
        w = np.linalg.eigvalsh((A + A.T) / 2)
        return bool(w[0] > margin * w[-1])
    return inside


def _triangle_invertible(A) -> bool:
    """The triangle a triangular solve reads is nonsingular: a finite, nonzero diagonal."""
    return bool(np.all(np.isfinite(A)) and np.all(np.diag(A) != 0))


GENERAL = matrix_grid((3, 3))
INVERTIBLE = matrix_grid((3, 3), kind="invertible")
#: Where torch's inv and solve return, with room for finite differences.
INV = matrix_grid((3, 3), kind="invertible", where=_well_inside("lu"))
SOLVE = matrix_grid((3, 3), (3,), kind="invertible", where=_well_inside("lu"))
SPD = matrix_grid((3, 3), kind="spd")
#: Where torch's cholesky returns, with room for finite differences.
CHOL = matrix_grid((3, 3), kind="spd", where=_well_inside("spd"))
#: LAPACK's syevd fails to converge at entries of 3.4e38 (float32's largest).
SYMMETRIC = matrix_grid((3, 3), kind="symmetric", where=_finite_below(1e30))
TRIANGLE = matrix_grid((3, 3), where=_triangle_invertible)


def _sym(A):
    """The symmetric matrix torch's OpInfo feeds Cholesky and eigh: ``(A + A^T) / 2``."""
    return (A + A.mT) / 2


# -- textbook formulas for the ops harness.exact has no entry for ---------------------------------

def _solve_lower_gram(L, B):
    """``(L L^T)^-1 B``: cholesky_solve's function of the lower triangle."""
    return torch.linalg.solve(L @ L.mT, B)


def _eigh_square(A):
    """``V diag(lambda**2) V^T`` from eigh: gauge-invariant (any sign or rotation of V gives it)."""
    w, V = torch.linalg.eigh(_sym(A))
    return (V * w * w) @ V.mT


def _square_sym(A):
    S = _sym(A)
    return S @ S


class CholeskyLogdet(torch.autograd.Function):
    """``log det A`` of an SPD matrix as ``2 sum(log diag L)``, ``L = cholesky(A)``,
    with the backward ``g A^-1`` from ``cholesky_inverse(L)``: the custom
    ``autograd.Function`` people write for Gaussian processes (issue 35's example).
    Its forward's digits are Cholesky's (backward stable), its gradient's
    ``A^-1``'s: relative to ``A^-1``, about the condition number times eps."""

    @staticmethod
    def forward(ctx, A):
        L = torch.linalg.cholesky(A)
        ctx.save_for_backward(L)
        return 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)

    @staticmethod
    def backward(ctx, g):
        (L,) = ctx.saved_tensors
        return g[..., None, None] * torch.cholesky_inverse(L)


def _cholesky_logdet(A):
    return CholeskyLogdet.apply(_sym(A))


class JitteredCholeskyLogdet(torch.autograd.Function):
    """``CholeskyLogdet`` with the jitter Gaussian-process code adds to the diagonal so that
    the factorization never fails (``A + 1e-6 I``): it never raises, and it is the log
    determinant of another matrix, wrong wherever an eigenvalue is not far above 1e-6."""

    @staticmethod
    def forward(ctx, A):
        return CholeskyLogdet.forward(ctx, A + 1e-6 * torch.eye(A.shape[-1], dtype=A.dtype))

    backward = CholeskyLogdet.backward


def _jittered_cholesky_logdet(A):
    return JitteredCholeskyLogdet.apply(_sym(A))


def _finite(A) -> bool:
    return bool(np.all(np.isfinite(A)))


def _no_zero(A) -> bool:
    return bool(np.all(np.isfinite(A)) and np.all(A != 0))


def _moderate(A) -> bool:
    """Finite entries within 2**10: exp(A) overflows float64 from about 710, and Arb's
    enclosure of exp(A) costs a squaring per binade of the norm."""
    return bool(np.all(np.isfinite(A)) and np.abs(A).max() <= 2.0 ** 10)


#: LAPACK's gesdd raises at a NaN entry, and the truth at ±inf entries is not a limit anyone reads.
FINITE = matrix_grid((3, 3), where=_finite)
#: The randomized low-rank SVD multiplies by ``A^T A`` twice (``niter=2``): its svd raises on the
#: overflowed sketch for entries from about 2**25 in float32 (measured), so both dtypes stay below 2**20.
LOWRANK = matrix_grid((3, 3), where=_finite_below(2.0 ** 20))


def _below(grid, bounds: dict):
    """``grid`` without the matrices whose largest entry reaches ``bounds[dtype]``."""
    def inside(dtype):
        return [p for p in grid(dtype) if np.abs(p.arrays[0]).max() < bounds[dtype]]
    inside.__name__ = inside.__qualname__ = f"{grid.__name__} below {bounds}"
    return inside


#: eig's backward checks that the loss ignores the eigenvectors' phases (``imag(diag(V^H gV))`` ~ 0, with
#: an absolute tolerance) and raises where rounding breaks it: measured, from a well-conditioned matrix of
#: entries 1.05e14 (float64) and 1.97e5 (float32) up; the grid stops below (FINDINGS).
EIG = _below(FINITE, {torch.float64: 2.0 ** 46, torch.float32: 2.0 ** 16})
MM = matrix_grid((3, 3), (3, 3))
MV = matrix_grid((3, 3), (3,))


# -- gauge-invariant functions of the decompositions ---------------------------------------------------------

def _cubed(U, S, Vh):
    """``U diag(S**3) V^H`` (= ``A A^T A``): any sign of a singular pair, or rotation
    within a repeated singular value's subspace, gives the same matrix, and it is a
    polynomial of A, smooth everywhere."""
    return (U * S[..., None, :] ** 3) @ Vh


def _svd_cubed(A):
    return _cubed(*torch.linalg.svd(A))


def _svd_old_cubed(A):
    U, S, V = torch.svd(A)
    return _cubed(U, S, V.mT)


def _seeded(fn, A, **options):
    """A randomized low-rank SVD run with the same seed at every call (its sketch is random)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return fn(A, **options)


def _svd_lowrank_cubed(A):
    U, S, V = _seeded(torch.svd_lowrank, A, q=3)
    return _cubed(U, S, V.mT)


def _pca_lowrank_cubed(A):
    U, S, V = _seeded(torch.pca_lowrank, A, q=3)
    return _cubed(U, S, V.mT)


def _gram_cubed(A):
    return A @ A.mT @ A


def _centred_cubed(A):
    C = A - A.mean(-2, keepdim=True)
    return C @ C.mT @ C


def _eig_square(A):
    """``V diag(w**2) V^-1`` (= ``A @ A``): invariant under any scaling of the eigenvectors,
    smooth at repeated and defective eigenvalues."""
    w, V = torch.linalg.eig(A)
    return ((V * w[..., None, :] ** 2) @ torch.linalg.inv(V)).real


def _power_sums(w):
    return torch.stack([w.sum(-1), (w ** 2).sum(-1), (w ** 3).sum(-1)], -1).real


def _traces(A):
    """``tr A, tr A^2, tr A^3``: the eigenvalues' first three power sums, symmetric in them."""
    A2 = A @ A
    return torch.stack([torch.trace(A), torch.trace(A2), torch.trace(A2 @ A)], -1)


def _positive_r(R):
    """R with its rows signed so that the diagonal is positive: the unique R of a full-rank A."""
    return R * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))[..., :, None]


def _gram_r(A):
    """The positive-diagonal R of A: the transposed Cholesky factor of ``A^T A``."""
    return torch.linalg.cholesky(A.mT @ A).mT


def _qr_positive_q(A):
    Q, R = torch.qr(A)
    return Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))[..., None, :]


def _gram_q(A):
    return A @ torch.linalg.inv(_gram_r(A))


def _householder(V, tau):
    """``H_0 H_1 ... H_{k-1}``, ``H_i = I - tau_i v_i v_i^T``, ``v_i`` column i of V below
    the diagonal with a 1 on it (LAPACK's orgqr, the textbook product)."""
    n = V.shape[-2]
    v = torch.tril(V, -1) + torch.eye(n, dtype=V.dtype)
    out = torch.eye(n, dtype=V.dtype)
    for i in range(tau.shape[-1]):
        out = out - tau[i] * (out @ torch.outer(v[:, i], v[:, i]))
    return out


def _near_projectors(dtype: torch.dtype) -> list[Point]:
    """Reflectors where ``householder_product_backward`` divides by ``tau |v|**2 - 1``: the first
    v = (1, 1, 0) (|v|**2 = 2) with tau = (1 + d) / 2, d from exactly 0 (a projector, the
    division by 0) out to 2**-4, every tau exact in the dtype; the others orthogonal
    reflectors (tau = 2 / |v|**2)."""
    small = [2.0 ** -40] if dtype == torch.float64 else []
    points = []
    for d in [0.0, 2.0 ** -4, -2.0 ** -4, 2.0 ** -12, -2.0 ** -12, 2.0 ** -20, -2.0 ** -20] + small:
        V = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
        tau = np.array([(1 + d) / 2, 2 / 1.25, 0.5])
        points.append(Point((V, tau), "reflector next to a projector", "tau |v|^2 - 1", d, input=1))
    return points


def _pivot_sign(pivots):
    """The permutation's sign from LAPACK's 1-based pivots: -1 per row swap."""
    swaps = (pivots != torch.arange(1, pivots.shape[-1] + 1, dtype=pivots.dtype)).sum(-1)
    return 1 - 2 * (swaps % 2)


def _lu_det(LU, pivots):
    return _pivot_sign(pivots) * torch.diagonal(LU, dim1=-2, dim2=-1).prod(-1)


def _unpacked_product(X):
    """``L U`` of an LU matrix at fixed pivots: L the unit lower triangle, U the upper."""
    P, L, U = torch.lu_unpack(X, torch.tensor([2, 2, 3], dtype=torch.int32))
    return L @ U


def _unit_lower_times_upper(X):
    return (torch.tril(X, -1) + torch.eye(X.shape[-1], dtype=X.dtype)) @ torch.triu(X)


def _same(A):
    return A * 1

CASES = [
    # -- determinants ----------------------------------------------------------------------------
    op("linalg.det", torch.linalg.det, grid=GENERAL),
    op("det", torch.det, grid=GENERAL),
    op("linalg.slogdet", lambda A: torch.linalg.slogdet(A).logabsdet, grid=INVERTIBLE),
    op("logdet", torch.logdet, grid=SPD),
    # the README's custom Function: logdet of an SPD matrix through its Cholesky factor
    op("logdet(custom Cholesky Function)", _cholesky_logdet, exact(lambda A: torch.logdet(_sym(A))), grid=CHOL),
    # ... and with the 1e-6 jitter added to the diagonal, where finite differences' steps stay clear of
    # the semidefinite edge (smallest/largest eigenvalue above 1e-4): wrong there already
    op("logdet(custom Cholesky Function, jitter 1e-6)", _jittered_cholesky_logdet,
       exact(lambda A: torch.logdet(_sym(A))), grid=matrix_grid((3, 3), kind="spd", where=_well_inside("spd", 1e-4))),
    # -- inverses and solves ---------------------------------------------------------------------
    op("linalg.inv", torch.linalg.inv, grid=INV),
    op("linalg.inv_ex", lambda A: torch.linalg.inv_ex(A).inverse, grid=INVERTIBLE),
    op("inverse", torch.inverse, grid=INV),
    op("linalg.pinv", torch.linalg.pinv, exact(torch.linalg.inv), grid=INV),
    op("pinverse", torch.pinverse, exact(torch.linalg.inv), grid=INV),
    op("linalg.tensorinv", lambda A: torch.linalg.tensorinv(A, ind=1), exact(torch.linalg.inv), grid=INV),
    op("linalg.solve", torch.linalg.solve, grid=SOLVE),
    op("linalg.solve_ex", lambda A, B: torch.linalg.solve_ex(A, B).result, exact(torch.linalg.solve),
       grid=matrix_grid((3, 3), (3,), kind="invertible")),
    op("linalg.tensorsolve", torch.linalg.tensorsolve, exact(torch.linalg.solve), grid=SOLVE),
    op("linalg.lstsq", lambda A, B: torch.linalg.lstsq(A, B[:, None]).solution[:, 0],
       exact(torch.linalg.solve), grid=SOLVE),
    op("linalg.solve_triangular", lambda A, B: torch.linalg.solve_triangular(A, B, upper=True),
       exact(lambda A, B: torch.linalg.solve(torch.triu(A), B)), grid=matrix_grid((3, 3), (3, 2),
                                                                                  where=_triangle_invertible)),
    op("triangular_solve", lambda A, B: torch.triangular_solve(B, A).solution,
       exact(lambda A, B: torch.linalg.solve(torch.triu(A), B)), grid=matrix_grid((3, 3), (3, 2),
                                                                                  where=_triangle_invertible)),
    # -- Cholesky --------------------------------------------------------------------------------
    op("linalg.cholesky", lambda A: torch.linalg.cholesky(_sym(A)), grid=CHOL),
    op("linalg.cholesky_ex", lambda A: torch.linalg.cholesky_ex(_sym(A)).L, grid=SPD),
    op("cholesky", lambda A: torch.cholesky(_sym(A)), grid=CHOL),
    op("cholesky_inverse", lambda A: torch.cholesky_inverse(torch.tril(A)),
       exact(lambda A: torch.linalg.inv(torch.tril(A) @ torch.tril(A).mT)), grid=TRIANGLE),
    op("cholesky_solve", lambda A, B: torch.cholesky_solve(B, torch.tril(A)),
       exact(lambda A, B: _solve_lower_gram(torch.tril(A), B)), grid=matrix_grid((3, 3), (3, 2),
                                                                                 where=_triangle_invertible)),
    # -- symmetric eigenvalues -------------------------------------------------------------------
    op("linalg.eigvalsh", lambda A: torch.linalg.eigvalsh(_sym(A)), grid=SYMMETRIC),
    op("linalg.eigh(eigenvalues)", lambda A: torch.linalg.eigh(_sym(A)).eigenvalues,
       exact(lambda A: torch.linalg.eigvalsh(_sym(A))), grid=SYMMETRIC),
    # eigenvectors through a gauge-invariant function, smooth at repeated eigenvalues
    op("linalg.eigh(V diag(w**2) V^T)", _eigh_square, exact(_square_sym), grid=SYMMETRIC),
    # -- singular values (gauge-invariant functions: module docstring) ---------------------------
    op("linalg.svdvals", torch.linalg.svdvals, grid=FINITE),
    op("linalg.svd(U diag(S**3) Vh)", _svd_cubed, exact(_gram_cubed), grid=FINITE),
    op("svd(U diag(S**3) V^T)", _svd_old_cubed, exact(_gram_cubed), grid=FINITE),
    op("svd_lowrank(U diag(S**3) V^T)", _svd_lowrank_cubed, exact(_gram_cubed), grid=LOWRANK),
    op("pca_lowrank(U diag(S**3) V^T)", _pca_lowrank_cubed, exact(_centred_cubed), grid=LOWRANK),
    op("linalg.matrix_norm(ord=2)", lambda A: torch.linalg.matrix_norm(A, 2), grid=FINITE),
    op("linalg.matrix_norm(ord=-2)", lambda A: torch.linalg.matrix_norm(A, -2), grid=FINITE),
    op("linalg.matrix_norm(ord='nuc')", lambda A: torch.linalg.matrix_norm(A, "nuc"), grid=FINITE),
    op("linalg.cond", torch.linalg.cond, grid=INVERTIBLE),   # singular: cond is inf, no gradient
    # -- general eigenvalues: symmetric functions --------------------------------------------------
    op("linalg.eig(V diag(w**2) V^-1)", _eig_square, exact(lambda A: A @ A), grid=EIG),
    op("linalg.eigvals(power sums)", lambda A: _power_sums(torch.linalg.eigvals(A)), exact(_traces), grid=FINITE),
    op("matrix_exp", torch.matrix_exp, grid=matrix_grid((3, 3), where=_moderate), dtypes=ALL),
    # -- QR: R and Q with R's diagonal made positive (unique for a full-rank A) --------------------
    op("linalg.qr(R, diagonal > 0)", lambda A: _positive_r(torch.linalg.qr(A).R), exact(_gram_r), grid=INVERTIBLE),
    op("qr(Q, diagonal of R > 0)", _qr_positive_q, exact(_gram_q), grid=INVERTIBLE),
    op("linalg.householder_product", torch.linalg.householder_product, exact(_householder),
       grid=matrix_grid((3, 3), (3,), where=_finite)),
    op("linalg.householder_product(near a projector)", torch.linalg.householder_product, exact(_householder),
       grid=_near_projectors),
    op("ormqr", lambda V, tau, C: torch.ormqr(V, tau, C), exact(lambda V, tau, C: _householder(V, tau) @ C),
       grid=matrix_grid((3, 3), (3,), (3, 3), where=_finite)),
    # -- LU: the determinant from the factors, the solve, and the factors' product ------------------
    op("linalg.lu_factor(det from LU)", lambda A: _lu_det(*torch.linalg.lu_factor(A)), exact(torch.linalg.det),
       grid=INV),
    op("linalg.lu_factor_ex(det from LU)", lambda A: _lu_det(*torch.linalg.lu_factor_ex(A)[:2]),
       exact(torch.linalg.det), grid=FINITE),
    op("lu(det from LU)", lambda A: _lu_det(*torch.lu(A)), exact(torch.linalg.det), grid=INV),
    op("linalg.lu(P L U)", lambda A: (lambda P, L, U: P @ L @ U)(*torch.linalg.lu(A)), exact(_same), grid=FINITE),
    op("linalg.lu_solve", lambda A, B: torch.linalg.lu_solve(*torch.linalg.lu_factor(A), B),
       exact(torch.linalg.solve), grid=matrix_grid((3, 3), (3, 2), kind="invertible", where=_well_inside("lu"))),
    op("lu_solve", lambda A, B: torch.lu_solve(B, *torch.linalg.lu_factor(A)),
       exact(torch.linalg.solve), grid=matrix_grid((3, 3), (3, 2), kind="invertible", where=_well_inside("lu"))),
    op("lu_unpack(L U)", _unpacked_product, exact(_unit_lower_times_upper), grid=GENERAL, dtypes=ALL),
    # -- traces and norms ------------------------------------------------------------------------
    op("trace", torch.trace, grid=GENERAL, dtypes=ALL),
    op("linalg.matrix_norm", torch.linalg.matrix_norm, grid=GENERAL, dtypes=ALL),
    *[op(f"linalg.matrix_norm(ord={o})", (lambda o: lambda A: torch.linalg.matrix_norm(A, o))(o), grid=GENERAL,
         dtypes=ALL)
      for o in (1, -1, math.inf, -math.inf)],
    op("linalg.norm", torch.linalg.norm, grid=GENERAL, dtypes=ALL),
    # -- products --------------------------------------------------------------------------------
    op("mm", torch.mm, grid=MM, dtypes=ALL),
    op("matmul", torch.matmul, grid=MM, dtypes=ALL),
    op("__rmatmul__", lambda A, B: B.__rmatmul__(A), exact(torch.matmul), grid=MM, dtypes=ALL),
    op("bmm", lambda A, B: torch.bmm(torch.stack([A, B]), torch.stack([B, A])), grid=MM, dtypes=ALL),
    op("mv", torch.mv, grid=MV, dtypes=ALL),
    op("addmm", torch.addmm, grid=matrix_grid((3, 3), (3, 3), (3, 3)), dtypes=ALL),
    op("addmv", lambda A, x, b: torch.addmv(b, A, x), grid=matrix_grid((3, 3), (3,), (3,)), dtypes=ALL),
    op("addr", torch.addr, grid=matrix_grid((3, 3), (3,), (3,)), dtypes=ALL),
    op("baddbmm", lambda A, B, C: torch.baddbmm(A[None], B[None], C[None]), grid=matrix_grid((3, 3), (3, 3), (3, 3)),
       dtypes=ALL),
    op("addbmm", lambda A, B, C: torch.addbmm(A, torch.stack([B, C]), torch.stack([C, B])),
       exact(lambda A, B, C: A + B @ C + C @ B), grid=matrix_grid((3, 3), (3, 3), (3, 3)), dtypes=ALL),
    op("linalg.multi_dot", lambda A, B, C: torch.linalg.multi_dot([A, B, C]),
       grid=matrix_grid((3, 3), (3, 3), (3, 3)), dtypes=ALL),
    op("matrix_power(2)", lambda A: torch.matrix_power(A, 2), grid=GENERAL, dtypes=ALL),
    op("linalg.matrix_power(3)", lambda A: torch.linalg.matrix_power(A, 3), grid=GENERAL, dtypes=ALL),
    op("kron", torch.kron, grid=matrix_grid((3, 3), (2, 2)), dtypes=ALL),
    op("tensordot", lambda A, B: torch.tensordot(A, B, dims=2), grid=MM, dtypes=ALL),
    op("einsum", lambda A, B: torch.einsum("ij,jk->ik", A, B), grid=MM, dtypes=ALL),
    op("linalg.diagonal", torch.linalg.diagonal, grid=GENERAL, dtypes=ALL),
    op("nn.functional.linear", F.linear, exact(lambda A, W, b: A @ W.mT + b),
       grid=matrix_grid((3, 3), (2, 3), (2,)), dtypes=ALL),
    op("nn.functional.bilinear", lambda W, x1, x2: F.bilinear(x1, x2, W[None]),
       exact(lambda W, x1, x2: torch.sum((x1 @ W) * x2, -1, keepdim=True)),
       grid=matrix_grid((3, 3), (2, 3), (2, 3)), dtypes=ALL),
    # -- sparse operands (the dense matrix converted in the forward) ------------------------------
    op("sparse.mm", lambda A, B: torch.sparse.mm(A.to_sparse(), B), exact(torch.matmul), grid=MM, dtypes=ALL),
    # C without zero entries: its CSR pattern is then every entry, and the function is C + A B
    op("sparse.sampled_addmm", lambda C, A, B: torch.sparse.sampled_addmm(C.to_sparse_csr(), A, B).to_dense(),
       exact(lambda C, A, B: C + A @ B), grid=matrix_grid((3, 3), (3, 3), (3, 3), where=_no_zero)),
    # -- vectors ---------------------------------------------------------------------------------
    op("dot", torch.dot, shape=((4,), (4,)), dtypes=ALL),
    op("vdot", torch.vdot, shape=((4,), (4,)), dtypes=ALL),
    op("inner", torch.inner, shape=((4,), (4,)), dtypes=ALL),
    op("outer", torch.outer, shape=((4,), (4,)), dtypes=ALL),
    op("linalg.vecdot", torch.linalg.vecdot, shape=((2, 4), (2, 4)), dtypes=ALL),
    op("cross", lambda a, b: torch.cross(a, b, dim=-1), shape=((3,), (3,)), dtypes=ALL),
    op("linalg.cross", torch.linalg.cross, shape=((3,), (3,)), dtypes=ALL),
    op("linalg.vander", torch.linalg.vander, exact(lambda x: torch.stack([x ** 0, x, x ** 2, x ** 3], -1)),
       shape=(4,), relation=lambda x: x.shape[-1] == 4),   # no float16 or bfloat16 kernel
]


#: At ±inf entries the products' `inf * 0` (an exact zero entry, or a cotangent of 0) is NaN where
#: the truth's limit is 0 or infinite, and `inf - inf` where two infinite terms meet.
_INF = "At ±inf entries `inf * 0` is NaN where the limit (the zero is exact) is finite or infinite."
#: LAPACK's getrf on subnormal or nearly underflowing matrices.
_LU_TINY = ("At a matrix scaled below ~1e-155 (float64) the inverse's entries (~1/s) meet the backward's "
            "products of them (~1/s**2): they overflow, and `inf - inf` or `inf * 0` is NaN where the truth is "
            "finite or infinite; at subnormal entries getrf scales a column by its pivot's reciprocal, which "
            "overflows (by hand, the subnormal pattern's LU multipliers are inf, then NaN).")
#: The same edges through an SVD (pinv, lstsq's backward).
_SVD_TINY = ("At a matrix scaled below ~1e-155 (float64) the pseudo-inverse's entries (~1/s) meet the backward's "
             "products of them (~1/s**2), which overflow (NaN); at subnormal entries the SVD's reciprocals "
             "overflow (by hand, pinv of the subnormal pattern is inf and NaN).")

FINDINGS = {
    "torch.linalg.det": Finding(
        "`linalg_det_backward` (FunctionsManual.cpp), first order (`GradMode` off, what `.backward()` runs), is "
        "`lu_solve(LU + eps I[diag == 0], det * g * I)`, i.e. `det * A^-T`, never the adjugate: at an exactly "
        "singular matrix whose LU meets an exact zero pivot det is 0 and the gradient 0 where the truth is the "
        "adjugate (rank 2 of 3 at scale 2.4e139: d/dA[0,0] 0, mpmath's cofactor -1.02e280); the SVD formula "
        "for singular inputs (`det.abs() < 100 eps`) runs only under `create_graph=True`. The forward is the "
        "product of the LU pivots: at a rank-2 matrix of scale 1.66e181 `u11 u22` overflows before it meets "
        "`u33 = 0` (value NaN, mpmath 0), and at subnormal entries the value is NaN (mpmath 2.2e-969: getrf's "
        "multipliers, the pivot's reciprocal times the column, overflow). One entry off a singular matrix (smallest singular value below 5.9e-22) the LU's "
        "rounding error (4.4e-15 beside entries of 5) swamps a determinant of 1.7e-20 and below: the value's "
        "sign is wrong, a forward error of the condition number (by hand at the entry 2**-60 off: torch 4.44e-15, "
        "mpmath -5 * 2**-60 = -4.34e-18). " + _INF,
        fix="the adjugate from the SVD branch (or cofactors) wherever `|det|` is below `100 eps` (torch's own "
            "singular formula), also at first order."),
    "torch.det": Finding("`torch.det` is `linalg.det`: the same `linalg_det_backward`."),
    "torch.linalg.slogdet": Finding(
        "`slogdet_backward` is `g A^-T` by `lu_solve` (\"no need to handle the singular case separately here "
        "since this function is not differentiable on singular matrices\"): where rounding makes the LU's last "
        "pivot exactly 0 for a matrix that is not singular (SPD with smallest eigenvalue 1.1e-32: mpmath "
        "log det = -69.890082, torch -inf; its d/dA[0,0] 4.06e31, torch NaN) the value is -inf and the "
        "gradient inf or NaN; near such matrices `A^-T` from the LU loses the digits of the condition number "
        "(46 to 50 bits at condition 2**50), and at a diagonal with a subnormal entry `1/d` overflows. "
        "A forward error of `eps cond(A)`: the truth is ill-conditioned there, the budget is not."),
    "torch.logdet": Finding("as slogdet (`logdet` is `slogdet` with the sign folded in, same backward)."),
    "torch.linalg.inv": Finding(
        "`linalg_inv` backward `-A^-H gA A^-H` (derivatives.yaml: `-at::matmul(inverse.mH(), "
        "at::matmul(grad, inverse.mH()))`) from the computed inverse: where the inverse's entries (~1/s for a "
        "matrix of scale s) overflow in the product the gradient is -inf or NaN although the truth is finite "
        "(scale 3.7e-155 in float64). " + _LU_TINY),
    "torch.linalg.inv_ex": Finding(
        "as inv (same backward); on the whole grid (the `_ex` twin returns where inv raises): at a matrix "
        "that rounding makes exactly singular (one entry off a singular matrix, smallest singular value below "
        "5.9e-22; SPD at eigenvalue 1.1e-32) "
        "getri returns inf or NaN and `info > 0` (documented), where the truth is finite; and `A^-1` loses "
        "the condition number's digits (up to 50.7 bits at SPD smallest eigenvalues 7e-16 to 4e-15; by hand at "
        "the ill-conditioned pattern's condition 2.25e15 ~ 2**51, d/dA[1,1] of sum(inv(A)) is -9.37e-4 in torch, "
        "-9.14e-4 in mpmath: 47.7 bits above an ULP). Underflow: entries spread over the binades give 0 where "
        "the inverse's entry is 3.7e-301 to 2e-118: by hand at one of them, the LU's multipliers are 6.0e-241 "
        "and -7.1e-161, and getri's products of them with U's entries fall below the subnormal range (-0 where "
        "mpmath's quotient of cofactors is 1.98e-118)."),
    "torch.inverse": Finding("`torch.inverse` is `linalg.inv`."),
    "torch.linalg.tensorinv": Finding("`tensorinv` with `ind=1` is `linalg.inv` of the reshaped matrix."),
    "torch.linalg.pinv": Finding(
        "pinv is not inv: its default cutoff `rtol = eps max(m, n)` drops singular values below "
        "`rtol sigma_max` (condition above 2.8e6 in float32), so there value and gradient are those of a "
        "lower-rank matrix (wrong sign, 0), by design; `pinv_backward` (FunctionsManual.cpp) adds the "
        "projections `(I - A A+)` and `(I - A+ A)`, rounding noise for an invertible A, multiplied by "
        "`A+`. At well-conditioned matrices pinv is `V diag(1/S) U^H` from gesdd's vectors, accurate in norm, "
        "not entry by entry (svdvals' finding): by hand at the condition-4 matrix [[8, 14, 8], [10, 22, -8], "
        "[22, 7, -14]], pinv's entries are up to 188 ULPs from mpmath's inverse (7.6 bits), inv's 3. "
        + _SVD_TINY),
    "torch.pinverse": Finding("`pinverse` is `linalg.pinv` (its `rcond=1e-15` the cutoff)."),
    "torch.linalg.solve": Finding(
        "`linalg_solve_backward`: `gB = A^-H gX` by `lu_solve` and `gA = -gB X^H`, from the LU of the forward. "
        + _LU_TINY),
    "torch.linalg.solve_ex": Finding(
        "as solve; on the whole grid: where rounding makes the LU exactly singular the solution is inf or "
        "NaN with `info > 0` (documented), and the condition number's digits are lost near it."),
    "torch.linalg.tensorsolve": Finding("`tensorsolve` of a matrix and a vector is `linalg.solve`."),
    "torch.linalg.lstsq": Finding(
        "CPU's default driver `gelsy` (QR with column pivoting) truncates at `rcond = eps max(m, n)`: beyond "
        "condition ~2.8e6 (float32) it solves a lower-rank problem (wrong sign, 0), by design; "
        "`linalg_lstsq_backward` forms `pinv(A)` (an SVD) and goes through `pinv_backward`, so its gradient "
        "carries pinv's per-entry errors even where the solve is exact to an ULP: by hand at the condition-4 "
        "matrix with b = (0.375, -1.125, 1.375) and cotangent (1.125, 0.5, 1.625), d/dA is up to 183 ULPs from "
        "mpmath's `-A^-T g x^T` (7.6 bits), where `linalg.solve`'s backward is within 4; up to 15 bits at "
        "condition 512. " + _SVD_TINY),
    "torch.linalg.solve_triangular": Finding(
        "`linalg_solve_triangular_backward`: `G_B = solve_triangular(A^H, G_X)`, `G_A = -(G_B X^H).triu()`: "
        "with a tiny diagonal entry d (below 1.6e-173 in float64) `X` ~ 1/d and `G_B` ~ 1/d overflow and "
        "their product `inf * 0` is NaN where the truth is finite; at entries spread over the binades the "
        "forward's back substitution overflows (value ±inf, truth ~1e242)."),
    "torch.triangular_solve": Finding("`triangular_solve_backward`: the same formulas as solve_triangular."),
    "torch.linalg.cholesky_ex": Finding(
        "the forward: near a semidefinite matrix potrf's last pivot `a33 - l31^2 - l32^2` cancels below the "
        "rounding error `eps ||A||`, so at smallest eigenvalue 1.1e-32 it is -5.3e-15 (info 3, the factor "
        "documented as invalid) where mpmath's L[2,2] is 3.14e-16; `cholesky_backward` (Murray's formula, "
        "two triangular solves with L) then inherits the condition number's error: 39 to 48 bits lost at "
        "eigenvalues 1e-15 to 3e-11, beyond the budget there (28 bits). The truth is ill-conditioned there "
        "itself."),
    "torch.cholesky_inverse": Finding(
        "`cholesky_inverse_backward` forms products of `(L L^H)^-1`, whose entries are ~1/d^2 for a diagonal "
        "entry d: they overflow (inf, then `inf * 0` or `inf - inf`: NaN) for d below ~2e-87 (float64), "
        "4.5e-13 (float32), where the gradient (~1/d^3) is finite until d ~ 1e-103; NaN values at entries "
        "spread over the binades."),
    "torch.cholesky_solve": Finding(
        "`cholesky_solve_backward`: `gB = cholesky_solve(gX, L)`, `gL = -(gB X^H + X gB^H) L`: X and gB ~ "
        "1/d^2 for a diagonal entry d overflow in their product (NaN below d ~ 2e-87, float64); the forward "
        "is NaN below d ~ 1.6e-173 (`1/d^2` overflows in the two triangular solves)."),
    "torch.linalg.eigvalsh": Finding(
        "`linalg_eig_backward` for eigenvalues only is `V diag(gL) V^H` with the computed eigenvectors. "
        "Where two eigenvalues are closer than ~1e-8 ||A|| the computed V is rotated within their plane by "
        "an angle ~ eps ||A|| / gap (Davis-Kahan), so each eigenvalue's gradient `v_i v_i^T` loses up to "
        "51 bits (wrong sign below a gap of 2e-15): the truth is itself ill-conditioned there and the "
        "budget there (27 to 34 bits) is smaller than that condition. The value: at smallest eigenvalue -1.1e-32 "
        "torch returns 2.4e-16 in the harness's batched call and 4.4e-17 called alone (mpmath -1.096e-32): "
        "an absolute error below `eps ||A||`, judged relatively."),
    "torch.linalg.eigh(eigenvalues)": Finding("as eigvalsh (the same kernel and backward)."),
    "torch.linalg.eigh(V diag(w**2) V^T)": Finding(
        "`linalg_eig_backward` (hermitian) divides `V^H gV` by `E_ij = lambda_j - lambda_i`: at an exactly "
        "repeated eigenvalue that is 0/0, so the gradient of the smooth function `V diag(w^2) V^T = S S` is NaN "
        "(identity: d/dA[0,0] NaN, mpmath 2; zero matrix: NaN, mpmath 0; eigenvalue gap 0: NaN, mpmath 14), "
        "and at a pair that rounding splits (scaled orthogonal M, eigenvalues 3, 3, -3) it divides rounding "
        "noise by noise: 50 bits lost. The issue's symmetric-function defect.",
        fix="for spectral functions, the divided differences `(f(l_i) - f(l_j)) / (l_i - l_j)` with their "
            "limit `f'(l_i)` at ties (Daleckii-Krein), not eigenvector derivatives."),
    "torch.linalg.svdvals": Finding(
        "`svd_backward` with only S used is `U diag(gS) V^H` (FunctionsManual.cpp): no division, but LAPACK's "
        "(gesdd's) singular vectors are accurate in norm (backward stable), not entry by entry, so an entry of "
        "`sum g_i u_i v_i^T` that cancels loses tens of ULPs at ordinary matrices (by hand at the condition-4 "
        "matrix [[8, 14, 8], [10, 22, -8], [22, 7, -14]] with cotangent (1.125, 0.5, 1.625): d/dA[0, 1] "
        "0.11111111111110888 in torch, 1/9 in mpmath's svd_r: 160 ULPs, 7.3 bits), and where two singular "
        "values are closer than eps ||A|| or one is below it (SPD at eigenvalue 1.1e-32) the vectors are "
        "rotated or signed arbitrarily: wrong sign. The value of a singular value that is exactly 0 is "
        "eps ||A|| (rank 2: 62 bits off a 0, judged relatively); at entries spread over the binades the "
        "vectors' components below eps are 0 (by hand: U[0, 1] and U[1, 0] are 0 in torch, 7.1e-161 in mpmath's "
        "svd_r), and the gradient's entries of 1e-160 with them."),
    "torch.linalg.svd(U diag(S**3) Vh)": Finding(
        "`svd_backward` (FunctionsManual.cpp) divides `(UhgU * S.unsqueeze(-2) + S.unsqueeze(-1) * VhgV) / E` "
        "with `E_ij = S_j**2 - S_i**2` (its comment: \"we assume A has distinct singular values\"): the "
        "smooth `A A^T A` gets NaN at the identity (by hand, d/dA[0, :] NaN, NaN, NaN where 2G + G^T is 3.375, "
        "1.75, 4.75), at signed permutations, scaled orthogonal and rank-deficient matrices (a repeated 0), and "
        "50 bits lost at nearly repeated ones. The issue's repeated-singular-value defect. At large scales "
        "`A A^T A` overflows inside the backward's products before the truth does.",
        fix="for a spectral function of A, the divided differences of `f` (Daleckii-Krein), never the "
            "singular vectors' derivatives."),
    "torch.svd(U diag(S**3) V^T)": Finding("`torch.svd` is `linalg.svd` (V transposed): the same `svd_backward`."),
    "torch.svd_lowrank(U diag(S**3) V^T)": Finding(
        "`svd_lowrank` (torch/_lowrank.py) projects A on a random sketch (QR of `A^T A`-power iterations) and "
        "takes `linalg.svd` of the small matrix: its backward is `svd_backward` through the QR and the sketch, "
        "so every repeated singular value of svd's finding is NaN here too, and also every zero one (q = 3 "
        "asks for all three: rank-deficient and triangular matrices with a tiny diagonal give NaN); the "
        "value carries the sketch's rounding (the identity's off-diagonal zeros are 1e-16)."),
    "torch.pca_lowrank(U diag(S**3) V^T)": Finding(
        "`pca_lowrank` centres A (`A - A.mean(-2)`), and a centred 3 x 3 matrix has rank <= 2 (its rows sum to "
        "0): with the default q = min(6, m, n) = 3 one singular value is rounding noise (1.2e-16 beside 3.4) "
        "and `svd_backward`'s divisions by singular-value gaps blow up: by hand at the SPD matrix [[2, 1, 0.5], "
        "[1, 3, 0.25], [0.5, 0.25, 4]], d/dA[0, 0] of `U diag(S**3) V^T` is -777986 in torch and -2.9913 in "
        "mpmath (`C C^T C` through the centring). NaN or garbage on nearly the whole grid.",
        fix="q no larger than the centred matrix's rank (min(m, n) - 1 for centred square data)."),
    "torch.linalg.matrix_norm(ord=2)": Finding(
        "`amax` of svdvals: the largest singular value's gradient `u_1 v_1^T` from gesdd's vectors (svdvals' "
        "finding): 4 to 6 bits lost near a repeated largest value, wrong sign in float32 beside a singular "
        "value below eps; gradients of 1e-160 lost to 0 at entries spread over the binades."),
    "torch.linalg.matrix_norm(ord=-2)": Finding(
        "the smallest singular value: its gradient `u_n v_n^T` is the worst determined of svdvals' (a zero or "
        "nearly repeated smallest value: wrong sign, 62 bits), and its value at a rank-deficient matrix is "
        "eps ||A||, not 0 (svdvals' finding)."),
    "torch.linalg.matrix_norm(ord='nuc')": Finding(
        "the sum of svdvals: `U V^T` from gesdd's vectors, which near a zero or repeated singular value are "
        "determined only up to eps ||A|| / gap (svdvals' finding); the polar factor `U V^T` itself is smooth "
        "there, so the lost digits are the vectors', not the function's."),
    "torch.linalg.cond": Finding(
        "`sigma_1 / sigma_n` from svdvals: where the smallest singular value is below eps ||A|| gesdd returns "
        "it as noise or 0 (SPD at eigenvalue 3.2e-15 in float32: value inf, truth 2.85e15), and its gradient "
        "inherits `u_n v_n^T`'s arbitrary sign (svdvals' finding) times the ratio's 1/sigma_n**2 (NaN, inf "
        "or 52 bits lost); a triangular or diagonal matrix with an entry below ~1e-173 squares it away."),
    "torch.linalg.eig(V diag(w**2) V^-1)": Finding(
        "`linalg_eig_backward` forms `V^-H (diag(gL) + (V^H gV - V^H V diag(real(V^H gV))) / E*) V^H` with "
        "`E_ij = lambda_j - lambda_i` (`VhgV.div_(Econj)`; the diagonal set to 1, nothing else): the smooth `A @ A` gets NaN at the identity (by hand: "
        "d/dA[0, :] NaN where 2G is 2.25, 1, 3.25), the zero matrix, scaled orthogonal matrices and pairs "
        "that rounding splits; and its check that the loss ignores the eigenvectors' phases (`imag(diag(V^H "
        "gV))` ~ 0, an absolute tolerance) raises at ordinary matrices of entries from 1.05e14 (float64), "
        "1.97e5 (float32): the grid stops there (harness notes). Values: eigenvectors of a nearly defective "
        "matrix make `V^-1` ill-conditioned (10 bits lost at two equal rows, float32).",
        fix="the divided differences of f (as eigh's)."),
    "torch.linalg.eigvals(power sums)": Finding(
        "`linalg_eig_backward` with only the eigenvalues is `linalg_solve(V.mH(), gL.unsqueeze(-1) * V.mH())`, "
        "a solve with V: at a "
        "defective matrix V is singular and the gradient of the smooth `tr A + tr A**2 + tr A**3` is wrong "
        "(by hand at [[1, 1, 0], [0, 1, 0], [0, 0, 2]]: d/dA[1, 0] 0 in torch, 8 exactly); near singular "
        "matrices the eigenvalues carry `eps ||A||` of absolute error (the sums of powers -3.7e-15 where "
        "mpmath has 3.4e-21: judged relatively), and at large scales `w**3` overflows before `tr A**3` does."),
    "torch.matrix_exp": Finding(
        "The CPU kernel (`mexp`, scaling and squaring over Bader-Blanes-Casas Taylor polynomials, "
        "aten/src/ATen/native/LinearAlgebra.cpp) branches on float and, `else`, double: float16 and bfloat16 "
        "take `mexp_impl<double>`, whose coefficient arrays are doubles that `at::from_blob(..., "
        "c10::toRealValueType(A.scalar_type()))` then reads as 16-bit numbers, raw bytes reinterpreted (read in "
        "the source; the garbage below agrees). Every float16 and bfloat16 result is wrong: by hand "
        "exp(diag(0.5, 0))[0, 0] is -21040 in float16 and -1.3e30 in bfloat16, exp(diag(0.001, 0)) NaN in "
        "both (float32: 1.6487 and 1.0010); the backward, the same kernel on the block `[[A^H, G], [0, A^H]]` "
        "(`linalg_matrix_exp_differential`), inherits it. Float32: at entries of 132 to 642 the squarings "
        "overflow to `inf - inf` (NaN where the truth is ±inf). Float64: at one typical matrix (entries "
        "-1.75 to 1.5) the value loses 4.4 bits against a budget of 4.1 (by hand: exp(A)[2, 2] "
        "0.9193090118717633 in torch, 0.91930901187176103707 in mpmath, 21 ULPs): the squarings amplify the "
        "polynomial's rounding, by 2**s for s squarings.",
        fix="compute 16-bit inputs in float32 (as the float32 kernel does) and round once."),
    "torch.linalg.qr(R, diagonal > 0)": Finding(
        "`linalg_qr_backward` ends with `linalg_solve_triangular(R.mH(), gA, /*upper*/ false, /*left*/ false)`, "
        "dividing by R's diagonal: where R is nearly singular (SPD at eigenvalue 1.1e-32, "
        "whose stored matrix is singular in float64) the gradient is NaN, and at subnormal and tiny-diagonal "
        "matrices R's diagonal is subnormal (by hand: 2.0e-322 for the subnormal pattern) and the solve's "
        "reciprocals overflow (wrong sign, 0, 51 bits); R's entries themselves "
        "are backward stable in norm, not entry by entry (3.7 bits lost at a typical matrix), and at entries "
        "spread over the binades small entries of R are 0."),
    "torch.qr(Q, diagonal of R > 0)": Finding(
        "as linalg.qr's R (the same `linalg_qr_backward`): Q's gradient carries R's inverse, so near a "
        "singular matrix (smallest singular value below 4e-15) it is wrong in sign, NaN at the SPD matrix of "
        "eigenvalue 1.1e-32, and -inf against +inf at subnormal entries."),
    "torch.linalg.householder_product": Finding(
        "`householder_product_backward` (FunctionsManual.cpp) walks the reflectors back from the product, "
        "undoing each `H_i = I - tau_i v_i v_i^H` by `H_i(sigma_i)`, `sigma = tau / (tau * "
        "input_first_k_cols_norm_squared - 1.0)` (its comment: it \"assumes that H_i(tau_i) are all "
        "invertible\"): a division by `tau_i |v_i|**2 - 1`, 0 where H_i is a projector. The grid convicts it only at reflectors of huge entries (from 3.5e13, where "
        "that division and the products around it overflow or cancel: NaN, or 0 where the truth is 1e169), "
        "but the division is the defect, and its own case (near a projector) convicts it in ordinary ranges: "
        "by hand at v = (1, 0.5, 0.5), tau = 2/3 (tau |v|**2 = 1, a projector: the product is a polynomial "
        "of V and tau, smooth there) d/dV[1, 0] is inf and d/dtau (inf, NaN, NaN), and at tau = 4/3 and 1/2 "
        "they are finite (-5.33 and -2).",
        fix="differentiate the product as the polynomial it is (the forward's own order of products), never "
            "through the reflectors' inverses."),
    "torch.linalg.householder_product(near a projector)": Finding(
        "householder_product's `sigma = tau / (tau |v|**2 - 1)` on the grid: at v = (1, 1, 0), tau = 1/2 "
        "(a projector) every gradient entry is NaN where the polynomial's is finite (d/dV[1, 0] 1.4375, exact "
        "in mpmath), and with tau |v|**2 - 1 = ±2**-12 up to 43 bits are lost (d/dtau[0] 0.400391 where the "
        "truth is 0.4): the division amplifies the rounding by 1/|tau |v|**2 - 1|. Not an edge: a reflector "
        "with any tau is an input the op accepts, and the forward is exact there."),
    "torch.ormqr": Finding("as householder_product (ormqr applies the same reflectors to C; `ormqr_backward` "
                           "reuses `householder_product_backward` for V and tau): by hand at the same projector with C = I, "
                           "d/dV[1, 0] is inf and d/dtau (inf, NaN, NaN)."),
    "torch.linalg.lu_factor(det from LU)": Finding(
        "The determinant as `sign(P) prod(diag U)`: prod's backward `g * result / input` (no zero in U) needs "
        "the product: where it underflows (scale 5.2e-113: product 1e-339 -> 0) the gradient is 0 where the "
        "truth is 2.2e-224, and where it overflows (scale above 2.4e139) `inf / input` meets `lu_factor_ex_"
        "backward`'s triangular solves as `inf * 0` (NaN). At a subnormal matrix getrf scales the column by "
        "the pivot's reciprocal, which overflows (by hand: the multipliers of [[1.58e-322, ...]] are inf, "
        "then NaN), where the determinant is 0 after rounding. " + _LU_TINY),
    "torch.linalg.lu_factor_ex(det from LU)": Finding("as lu_factor (the same kernel and backward), on the whole "
                                                      "grid."),
    "torch.lu(det from LU)": Finding("`torch.lu` is `linalg.lu_factor`."),
    "torch.linalg.lu(P L U)": Finding(
        "`linalg_lu_backward` forms `L^-H (tril(L^H gL, -1) + triu(gU U^H)) U^-H` by "
        "`linalg_solve_triangular(U.mH(), ...)`, dividing by U's diagonal: at any singular matrix "
        "(zero row, rank 1 or 2, two equal rows, the zero matrix) U's last pivot is 0 and the gradient of "
        "`P L U = A` is NaN where the truth is the cotangent itself (by hand at a zero row: d/dA[0, :] NaN, "
        "where G[0, :] is 1.125, 0.5, 1.625). L and U are differentiable at a rank n-1 matrix whose leading "
        "minors do not vanish; the formula's solve with U is not.",
        fix="the backward from `triu` and `tril` parts by forward substitution that never inverts U's last "
            "pivot (its row of `U^-H` only meets `g`'s last row)."),
    "torch.linalg.lu_solve": Finding("`lu_solve`'s backward (`linalg_lu_solve_LU` and `linalg_lu_solve` in "
                                     "derivatives.yaml) solves with the factors again, as solve's: " + _LU_TINY),
    "torch.lu_solve": Finding("`torch.lu_solve` is `linalg.lu_solve`."),
    "torch.lu_unpack(L U)": Finding(_INF + " (an entry of L that is exactly 0 times U's infinite one).",
                                    edge=True),
    "torch.sparse.mm": Finding(
        "By design: the gradient of a sparse operand is masked to its pattern (torch.sparse's documentation), "
        "and `to_sparse` dropped A's zero entries, so d/dA at a zero entry is 0 where the dense function's is "
        "`(G B^T)_ij` (by hand at A = I: d/dA[0, :] 3.3125, 0, 0 against 3.3125, 0.4375, -0.125). Certified "
        "where the pattern is every entry (the sampled_addmm case)."),
    "torch.logdet(custom Cholesky Function, jitter 1e-6)": Finding(
        "The jitter: `log det(A + 1e-6 I)` is not `log det A`, and its gradient `(A + 1e-6 I)^-1` not `A^-1`; "
        "the error is about `1e-6 tr(A^-1)` in the value and `1e-6 A^-2` in the gradient, so it shows wherever "
        "an eigenvalue is not far above 1e-6 times the digits kept (by hand, float32 at diag(1, 0.5, 2**-12): "
        "d/dA[2, 2] 4079.29 where 1/2**-12 = 4096, the jittered 1/(2**-12 + 1e-6) = 4079.3). The same "
        "Function without it is certified (`CholeskyLogdet`).",
        alternative="torch.logdet(custom Cholesky Function)"),
    "torch.linalg.matrix_norm": Finding(
        "the Frobenius norm is `vector_norm` unscaled: squares overflow (inf for entries above ~1.3e154, "
        "gradient 0 there) and `x / norm` is `inf / inf` = NaN at ±inf entries (as vector_norm in part 2). In "
        "float16 the backward's `x / norm` takes the float16 result: where the norm overflows (entries of "
        "6.55e4, norm 1.47e5: inf, rightly) the gradient is 0 where the truth is 0.447, and where the norm is "
        "subnormal (entries ~6e-8) it has few bits left (7.3 bits lost; underflow beside it)."),
    "torch.linalg.norm": Finding("`linalg.norm` of a matrix is `matrix_norm`'s Frobenius norm."),
    "torch.linalg.matrix_norm(ord=1)": Finding(
        "`amax` of the column sums of |A|: the sums are rounded, so columns whose exact sums differ by less "
        "than an ULP tie, and amax's backward splits the gradient evenly among ties (0.5 where the truth is 1 "
        "or 0, 62 bits)."),
    "torch.linalg.matrix_norm(ord=inf)": Finding("as ord=1, over the row sums."),
    "torch.bmm": Finding("at the largest finite entries (±1.8e308 beside 1) one product overflows before the "
                         "sum brings it back: by hand, (B A)[1, 0] = -0.625 * 1.8e308 + 1.625 + 1.25 * 1.8e308 = "
                         "1.12e308, but 1.25 * 1.8e308 is inf alone (torch: inf); the gradient's sums meet "
                         "`inf - inf` (d/dB NaN).", edge=True),
    "torch.linalg.multi_dot": Finding(_INF, edge=True),
    "torch.matrix_power(2)": Finding(_INF, edge=True),
    "torch.linalg.matrix_power(3)": Finding(
        _INF + " In float16 at a matrix of scale 6.1e-5 the gradient's terms (products of three entries and the "
        "cotangent, ~1e-8) lie below float16's subnormal step 6e-8 and round to 0 or ±6e-8 one by one: the sum "
        "-5.96e-08 where the truth rounds to +5.96e-08.", edge=True),
    "torch.kron": Finding("at the largest finite entries the gradient's sums overflow to `inf - inf`.", edge=True),
    "torch.tensordot": Finding("at the largest finite entries the sum of products overflows to `inf - inf` "
                               "(NaN, truth ±inf).", edge=True),
    "torch.nn.functional.bilinear": Finding("as tensordot: `x1 W x2` overflows to `inf - inf`.", edge=True),
    "torch.dot": Finding(_INF, edge=True),
    "torch.vdot": Finding(_INF, edge=True),
    "torch.inner": Finding(_INF, edge=True),
    "torch.outer": Finding(
        _INF + " The silent zero (float64; float32 alike): d/dx0[0] is the sum `sum_j g_0j y_j` over y = "
        "(1.2194330274671847e142, 1.2194330274671845e142, -1.2194330274671845e142, ...), entries an ULP apart, "
        "whose exact value 3.05e126 is 2**-52 of its terms (condition 4e15); torch's rounded sum is 0, within "
        "a backward-stable error (`eps sum|g y|` = 1e127) but 62.5 bits from the truth in ULPs against a "
        "budget of 57.8 (harness notes).", edge=True),
    "torch.linalg.vecdot": Finding(_INF, edge=True),
    "torch.cross": Finding(_INF, edge=True),
    "torch.linalg.cross": Finding(_INF, edge=True),
    "torch.linalg.vander": Finding(
        "the columns are a `cumprod` of x: where `x**3` overflows (x above ~5.6e102 in float64) cumprod's "
        "backward, which goes through the overflowed output, gives inf or NaN where the gradient `3 x**2` "
        "is finite; NaN at ±inf entries. At subnormal x, cumprod's backward divides `g * x` by x: `0.875 * "
        "5e-324` rounds to the one-bit subnormal 5e-324 and the quotient is 1.0 where the truth is 0.875 "
        "(50 bits). The swallowed NaN is the first column: `x**0` is 1 at x = NaN (C99's pow(NaN, 0)), which "
        "the harness counts as a swallowed NaN, as pow(1, NaN) in part 1.", edge=True),
}

#: Why a compiled verdict differs from eager's (``pytest cases/torch_linalg.py --torch-ops --compile``).
COMPILED_FINDINGS = {
    ("torch.kron", "float16"): CompiledFinding(
        "Compiled, kron's float16 gradient along B is finite at entries of 6.55e4 where eager's is NaN (the sum "
        "of products overflows float16). Not checked by hand; it has the pattern of the others: " + HALF_IN_FLOAT,
        None, "inductor"),
    **{(name, dtype): CompiledFinding(
        "Compiled in float16 and bfloat16, the gradient of the 1- and inf-norms (amax or amin of the column or "
        "row sums of |A|) is NaN at ordinary matrices where eager's is right. By hand (float16, near-singular "
        "matrix, exact column sums 9.504, 10.998, 6.012): eager's value 11.0 and gradient the ones of column 1; "
        "compiled value 11.0 and gradient NaN everywhere. Inferred, the generated code not read: the backward "
        "selects the maxima by `sums == result` (amax_backward's mask), and Inductor keeps the recomputed sums "
        "in float32 (10.998) while the result was rounded to the 16-bit format (11.0): no entry is selected, and "
        "the mask's division by its count (0) is 0/0.", None, None)
       for name in ("torch.linalg.matrix_norm(ord=1)", "torch.linalg.matrix_norm(ord=inf)",
                    "torch.linalg.matrix_norm(ord=-1)", "torch.linalg.matrix_norm(ord=-inf)")
       for dtype in ("float16", "bfloat16")},
}

#: Inductor's float32 reduction in vector lanes, then a tree: another order of rounding than eager's loop.
_LANES = ("Inductor's vectorized reduction sums in lanes and then a tree, eager's kernel in another order: the "
          "rounding differs (the scalar compile, `cpp.simdlen = 1`, gives eager's number).")
COMPILED_FINDINGS.update({
    **{(name, dtype): CompiledFinding(HALF_IN_FLOAT, None, "inductor")
       for name, dtypes in (("torch.matrix_power(2)", ("float16", "bfloat16")),
                            ("torch.linalg.matrix_power(3)", ("float16", "bfloat16")),
                            ("torch.outer", ("float16",)), ("torch.linalg.vecdot", ("float16",)))
       for dtype in dtypes},
    ("torch.outer", "bfloat16"): CompiledFinding(
        HALF_IN_FLOAT + " Here it overflows instead: the float32 sum 2.55e38 of products of ±3.39e38 rounds to "
        "bfloat16's inf where eager's bfloat16 accumulation keeps 2.55e38 (the truth).", None, "inductor"),
    ("torch.outer", "float32"): CompiledFinding(
        _LANES + " At y's entries of ±2.81e14 an ULP apart the sum cancels: eager's order gives 0 (silent zero), "
        "the lanes' 33554432, nearer the truth.", None, "inductor"),
    **{("torch.linalg.vecdot", dtype): CompiledFinding(
        _LANES + " At entries of 1.7e38 eager's running sum overflows partway (-inf), the lanes' partial sums do "
        "not (-2.13e37 in float32, the truth's rounding).", None, "inductor") for dtype in ("float32", "bfloat16")},
    ("torch.linalg.matrix_norm(ord=inf)", "float32"): CompiledFinding(
        _LANES + " Two row sums of |A| whose exact values differ by less than an ULP tie in eager's rounding (amax's "
        "backward splits the gradient, 0.5) and not in the lanes' (0 and 1, the truth): a gain.", None, "inductor"),
    **{(name, dtype): CompiledFinding(
        "By hand: eager's CPU cross kernel gives d/db[2] = g0 a1 - g1 a0 at a = (1.8e308, 1.8e308, 1.8e308), g = "
        "(1.125, 0.5, 1.625) as 1.1235582092889472e308, which is fma(1.125, a1, -(0.5 * a0)) exactly (the C++ "
        "compiler contracts the multiply-add; 1.125 * a1 alone is inf); the decomposition (`linalg_cross` in "
        "torch/_refs: products of rolled operands, then a difference) rounds each product first: inf. A loss "
        "under compile; in float16 the decomposition computes in float32 and gains instead.", None,
        "decomposition")
       for name in ("torch.cross", "torch.linalg.cross") for dtype in ("float64", "float32")},
    **{(name, "float16"): CompiledFinding(HALF_IN_DECOMPOSITION, None, "decomposition")
       for name in ("torch.cross", "torch.linalg.cross")},
})

#: The measured compiled verdicts where they differ from the eager expectation.
COMPILED_EXPECT = {
    "torch.kron": {"float16-compiled": certified()},
    **{f"torch.linalg.matrix_norm(ord={o})": {f"{d}-compiled": convicted("lost-digits", "non-finite", "silent-zero")
                                             for d in ("float16", "bfloat16")} for o in (1, math.inf)},
    **{f"torch.linalg.matrix_norm(ord={o})": {f"{d}-compiled": convicted("non-finite")
                                             for d in ("float16", "bfloat16")} for o in (-1, -math.inf)},
}
with_compiled(COMPILED_EXPECT, CASES)

#: What the harness does where the truth is undefined or a choice, and what it gets wrong
#: on these cases (the page's "Harness notes").
HARNESS_NOTES = (
    "**Where an op raises, the grid stops short of it.** torch's inv, solve and cholesky raise at a singular "
    "or indefinite matrix and a raising forward stops a case, so their grids hold only the matrices where they "
    "return (`kind=\"invertible\"`, `\"spd\"`, decided exactly in fractions); the `_ex` twins run on the same "
    "grids.",
    "**Gauge-invariant functions.** eigh's eigenvectors are judged through `V diag(w**2) V^T` (= `S @ S`), "
    "smooth at repeated eigenvalues; slogdet through its `logabsdet`.",
    "**A repeated eigenvalue is a kink of the ordered eigenvalues**: eigvalsh's gradient there has no truth "
    "and is counted, not judged.",
    "**Ill-conditioned truths.** Near a repeated eigenvalue or a semidefinite matrix the truth of eigvalsh's "
    "and cholesky_ex's gradients is itself ill-conditioned (computed eigenvectors rotate by about eps / gap); "
    "the budget there (27 to 34 bits) is smaller than that condition, so those convictions say that torch's "
    "numbers carry it, not that a formula is wrong.",
    "**Left out.** `linalg.cond(A, p)` for p in 'fro', 1, -1, inf, -inf raises in its backward at every "
    "input (torch 2.13: the inverse from `linalg_inv_ex` is modified in place after autograd saved it); "
    "`linalg.cond` is judged with its default p (the singular values' ratio); p = 'nuc' returns.",
    "**Where a decomposition's backward raises, the grid stops short of it.** eig's backward raises where "
    "rounding breaks its check that the loss ignores the eigenvectors' phases (from entries of 1.05e14 in "
    "float64, 1.97e5 in float32, measured), LAPACK's SVD raises at a NaN entry and on the overflowed sketch "
    "of the low-rank SVD (entries from about 2**25 in float32); those grids stop below (`EIG`, `LOWRANK`, "
    "`FINITE`), and the finding names the raise.",
    "**Exact singular values** come from the eigenvalues of the Gram matrix `A^T A`, whose entries the "
    "engine forms exactly, so a condition number of 2**50 costs 100 more bits, not digits; a zero singular "
    "value (decided over Q) is a kink of `sigma = |t|`, and a repeated one a kink of the ordered values: "
    "both counted, not judged. The nuclear norm is smooth at a repeated singular value; the engine still "
    "counts it there as a kink (it reads it through the ordered values).",
    "**The matrix exponential** is Arb's enclosure, its derivative the upper right block of "
    "`exp([[A, E], [0, A]])`; the grid keeps entries within 2**10 (Arb's cost grows with the norm).",
    "**Sparse operands** are the dense matrix converted in the forward (`to_sparse`, `to_sparse_csr`): the "
    "gradient of a sparse tensor is masked to its pattern by design, so `sparse.mm`'s zero entries get none "
    "(the finding); `sampled_addmm` runs on matrices C without zero entries, where its pattern is every entry.",
    "**A zero against a cancelling truth.** Bits are Herbie's ULP distance, which counts every float "
    "between two numbers: a rounded sum of 0 where the exact sum is 2**-52 of its terms (outer's d/dx0 at "
    "entries of 1.2e142 an ULP apart) is 62.5 bits off, above the budget the sum's condition allows (57.8), "
    "although within `eps sum|terms|`, the error a backward-stable sum may make. The conviction stands as "
    "measured; the finding says so.",
    "**The Cholesky logdet Function** (`CholeskyLogdet`, docs/cholesky_logdet.md) runs where torch's cholesky "
    "returns with room for finite differences (smallest/largest eigenvalue above 1e-8): certified there in "
    "float64 and float32; nearer the semidefinite edge its forward raises, as torch.cholesky's does. Its "
    "twin with the Gaussian-process jitter (`A + 1e-6 I`) never raises, and is convicted where its finite "
    "differences can run (smallest/largest eigenvalue above 1e-4).",
)
