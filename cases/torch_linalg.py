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

Judged functions where the mathematics has no single answer: ``eigh``'s
eigenvectors are defined up to sign (and, at a repeated eigenvalue, up to a
rotation), so the eigenvector case judges ``V diag(lambda**2) V^T`` (that is,
``S @ S``), which is smooth everywhere, repeated eigenvalues included;
``slogdet`` is judged on ``logabsdet`` (its sign is piecewise constant).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import harness
from harness import certified, convicted
from harness.inputs.matrix_patterns import matrix_grid
from harness.judging.expectations import with_compiled
from harness.tables.compiled_findings import HALF_IN_FLOAT, CompiledFinding

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
    "torch.linalg.householder_product": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.ormqr": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
    "torch.linalg.lu_factor(det from LU)": convicted("non-finite", "silent-zero"),
    "torch.linalg.lu_factor_ex(det from LU)": convicted("non-finite", "silent-zero"),
    "torch.lu(det from LU)": convicted("non-finite", "silent-zero"),
    "torch.linalg.lu(P L U)": convicted("lost-digits", "non-finite", "silent-zero"),
    "torch.linalg.lu_solve": convicted("non-finite"),
    "torch.lu_solve": convicted("non-finite"),
    "torch.lu_unpack(L U)": convicted("non-finite"),
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


def _finite(A) -> bool:
    return bool(np.all(np.isfinite(A)))


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


class Finding(NamedTuple):
    """An op's defect: the cause in torch's formula, and a certified alternative
    (a case of this file) or a fix not certified here; ``edge``: only at ±inf,
    the overflow threshold or subnormal inputs."""

    cause: str
    alternative: str | None = None
    fix: str | None = None
    edge: bool = False


#: At ±inf entries the products' `inf * 0` (an exact zero entry, or a cotangent of 0) is NaN where
#: the truth's limit is 0 or infinite, and `inf - inf` where two infinite terms meet.
_INF = "At ±inf entries `inf * 0` is NaN where the limit (the zero is exact) is finite or infinite."
#: LAPACK's getrf on subnormal or nearly underflowing matrices.
_LU_TINY = ("At subnormal entries and at a matrix scaled below ~1e-155 (float64), the LU or its inverse "
            "overflows (pivots ~1/s^2) and NaN follows, where the truth is finite or infinite; the "
            "kernel's part (LAPACK getrf/getri) is not analysed further.")

FINDINGS = {
    "torch.linalg.det": Finding(
        "`linalg_det_backward` (FunctionsManual.cpp), first order (`GradMode` off, what `.backward()` runs), is "
        "`lu_solve(LU + eps I[diag == 0], det * g * I)`, i.e. `det * A^-T`, never the adjugate: at an exactly "
        "singular matrix whose LU meets an exact zero pivot det is 0 and the gradient 0 where the truth is the "
        "adjugate (rank 2 of 3 at scale 2.4e139: d/dA[0,0] 0, mpmath's cofactor -1.02e280); the SVD formula "
        "for singular inputs (`det.abs() < 100 eps`) runs only under `create_graph=True`. The forward is the "
        "product of the LU pivots: at a rank-2 matrix of scale 1.66e181 `u11 u22` overflows before it meets "
        "`u33 = 0` (value NaN, mpmath 0), and at subnormal entries the value is NaN (mpmath 2.2e-969; the LU's "
        "part not analysed). One entry off a singular matrix (smallest singular value below 5.9e-22) the LU's "
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
        "the inverse's entry is 3.7e-301 (not analysed)."),
    "torch.inverse": Finding("`torch.inverse` is `linalg.inv`."),
    "torch.linalg.tensorinv": Finding("`tensorinv` with `ind=1` is `linalg.inv` of the reshaped matrix."),
    "torch.linalg.pinv": Finding(
        "pinv is not inv: its default cutoff `rtol = eps max(m, n)` drops singular values below "
        "`rtol sigma_max` (condition above 2.8e6 in float32), so there value and gradient are those of a "
        "lower-rank matrix (wrong sign, 0), by design; `pinv_backward` (FunctionsManual.cpp) adds the "
        "projections `(I - A A+)` and `(I - A+ A)`, rounding noise for an invertible A, multiplied by "
        "`A+`; the digits lost at well-conditioned matrices (7.6 bits in the value at condition 4, float64) "
        "are not analysed. " + _LU_TINY.replace("LU", "SVD").replace("getrf/getri", "gesdd")),
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
        "`linalg_lstsq_backward` goes through `pinv`'s formula, and the digits lost at well-conditioned "
        "matrices in float64 (up to 15 bits at condition 512) are not analysed. " + _LU_TINY.replace(
            "(LAPACK getrf/getri)", "(gelsy)")),
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
        "spread over the binades. Not analysed further."),
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
    "torch.bmm": Finding("at the largest finite entries (±1.8e308 beside 1) a sum of products overflows "
                         "partway (value inf where the truth is 1.12e308) and the gradient's sums meet "
                         "`inf - inf` (d/dB NaN); not checked by hand at the harness's point.", edge=True),
    "torch.linalg.multi_dot": Finding(_INF, edge=True),
    "torch.matrix_power(2)": Finding(_INF, edge=True),
    "torch.linalg.matrix_power(3)": Finding(_INF + " The float16 wrong sign is not analysed.", edge=True),
    "torch.kron": Finding("at the largest finite entries the gradient's sums overflow to `inf - inf`.", edge=True),
    "torch.tensordot": Finding("at the largest finite entries the sum of products overflows to `inf - inf` "
                               "(NaN, truth ±inf).", edge=True),
    "torch.nn.functional.bilinear": Finding("as tensordot: `x1 W x2` overflows to `inf - inf`.", edge=True),
    "torch.dot": Finding(_INF, edge=True),
    "torch.vdot": Finding(_INF, edge=True),
    "torch.inner": Finding(_INF, edge=True),
    "torch.outer": Finding(_INF + " The silent zeros (float64, float32) are not analysed.", edge=True),
    "torch.linalg.vecdot": Finding(_INF, edge=True),
    "torch.cross": Finding(_INF, edge=True),
    "torch.linalg.cross": Finding(_INF, edge=True),
    "torch.linalg.vander": Finding(
        "the columns are a `cumprod` of x: where `x**3` overflows (x above ~5.6e102 in float64) cumprod's "
        "backward, which goes through the overflowed output, gives inf or NaN where the gradient `3 x**2` "
        "is finite; NaN at ±inf entries. The lost digits and swallowed NaNs are not analysed.", edge=True),
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
    "**Left out.** `linalg.cond(A, 'fro')` raises in its backward at every input (torch 2.13: the inverse "
    "from `linalg_inv_ex` is modified in place after autograd saved it), so it has no case; the "
    "SVD-based ops (svd, svdvals, cond(2), matrix_rank, matrix_exp, lu, qr, eig) have no exact reference yet.",
    "**The Cholesky logdet Function** (`CholeskyLogdet`, the README's example) runs where torch's cholesky "
    "returns with room for finite differences (smallest/largest eigenvalue above 1e-8): certified there in "
    "float64 and float32; nearer the semidefinite edge its forward raises, as torch.cholesky's does.",
)
