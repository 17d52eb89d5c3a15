"""harness.truth.exact_linalg (balls) and exact_linalg_ops (the mpmath stand-in):
linear algebra's values and derivatives against an independent computation in
plain mpmath at 1,500 bits (mpmath's own det, inverse, lu_solve, cholesky and
eigsy; the derivatives from their analytic formulas, not the minors), at a
well-conditioned, an ill-conditioned (condition 2**50) and singular matrices.
The balls must hold the independent number and be narrow; the stand-in must
agree with it to its working precision; where no precision decides (a singular
matrix under inv, a semidefinite one under cholesky, a repeated eigenvalue) the
point is marked, never given a number."""

from __future__ import annotations

import math

import flint
import mpmath
import numpy as np
import pytest
import torch

import harness
from harness.inputs.matrix_patterns import scaled_orthogonal
from harness.truth.ball import Handover, solve_grid
from harness.truth.exact_ball import BallUnsupported, evaluate
from harness.truth.exact_tensor import ExactUnsupported
from harness.truth.flat_reference import _FlatReference
from harness.truth.point import solve_point
from harness.truth.table import decode

arb = flint.arb
REF_BITS = 1500   # past 2**-1010 beside entries of 5 (ONE_OFF)


def _mixed(d, symmetric=False):
    """``M diag(d) N^T`` (``M diag(d) M^T``) of scaled_orthogonal, exact in float64 here."""
    m, _ = scaled_orthogonal(3)
    n, _ = scaled_orthogonal(3, second=True)
    n = m if symmetric else n
    return [[sum(m[i][k] * n[j][k] * d[k] for k in range(3)) for j in range(3)] for i in range(3)]


WELL = [[2.0, -1.0, 0.5], [1.0, 3.0, 0.25], [-0.5, 0.75, 4.0]]
ILL = _mixed([1.0, 0.5, 2.0 ** -50])                      # singular values 9, 4.5, 9 * 2**-50
SINGULAR = [[1.0, 2.0, 3.0], [2.0, -1.0, 1.0], [-5.0, 5.0, 0.0]]   # rank 2: the adjugate is not 0
RANK_ONE = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [-1.0, -2.0, -3.0]]  # the adjugate is 0
ONE_OFF = [[1.0, 2.0, 3.0], [2.0, -1.0, 1.0], [-5.0, 5.0, 2.0 ** -1010]]  # det -5 * 2**-1010 from terms of 15
SPD = [[2.0, 1.0, 0.5], [1.0, 3.0, 0.25], [0.5, 0.25, 4.0]]
ILL_SPD = _mixed([1.0, 0.5, 2.0 ** -50], symmetric=True)   # eigenvalues 9, 4.5, 9 * 2**-50
CLOSE = _mixed([1.0, 0.5 * (1 + 2.0 ** -40), 0.5], symmetric=True)   # an eigenvalue gap of 9 * 2**-41
REPEATED = _mixed([1.0, 0.5, 0.5], symmetric=True)
for _a in (ILL, ILL_SPD, CLOSE, REPEATED):
    assert all(float(v) == v for row in _a for v in row)


# -- the independent computation: plain mpmath, analytic derivatives -------------------------------------------

def _mp(a):
    return mpmath.matrix([[mpmath.mpf(v) for v in row] for row in a])


def _unit(k, l, n=3):
    e = mpmath.zeros(n, n)
    e[k, l] = 1
    return e


def _lower_symmetric(a):
    return [[a[max(i, j)][min(i, j)] for j in range(3)] for i in range(3)]


def _lower_direction(k, l):
    """How the symmetric matrix read from the lower triangle moves along input (k, l)."""
    if k < l:
        return mpmath.zeros(3, 3)
    return _unit(k, l) + (_unit(l, k) if k > l else 0)


def ref_det(a):
    """``(value, {(k, l): partial})``: the cofactors, each a 2 x 2 determinant of mpmath's."""
    with mpmath.workprec(REF_BITS):
        m = _mp(a)
        grads = {}
        for k in range(3):
            for l in range(3):
                rows, cols = [r for r in range(3) if r != k], [c for c in range(3) if c != l]
                minor = mpmath.matrix([[m[r, c] for c in cols] for r in rows])
                grads[k, l] = (-1) ** (k + l) * mpmath.det(minor)
        return [mpmath.det(m)], {kl: [g] for kl, g in grads.items()}


def ref_logabsdet(a):
    with mpmath.workprec(REF_BITS):
        m = _mp(a)
        x = mpmath.inverse(m)
        return [mpmath.log(abs(mpmath.det(m)))], {(k, l): [x[l, k]] for k in range(3) for l in range(3)}


def ref_inv(a):
    with mpmath.workprec(REF_BITS):
        x = mpmath.inverse(_mp(a))
        values = [x[i, j] for i in range(3) for j in range(3)]
        return values, {(k, l): [-x[i, k] * x[l, j] for i in range(3) for j in range(3)]
                        for k in range(3) for l in range(3)}


def ref_solve(a, b):
    """``A x = b``: values, partials along A's entries (k, l) and b's entries ("b", k)."""
    with mpmath.workprec(REF_BITS):
        x = mpmath.inverse(_mp(a))
        sol = mpmath.lu_solve(_mp(a), mpmath.matrix([mpmath.mpf(v) for v in b]))
        grads = {(k, l): [-x[i, k] * sol[l] for i in range(3)] for k in range(3) for l in range(3)}
        grads.update({("b", k): [x[i, k] for i in range(3)] for k in range(3)})
        return [sol[i] for i in range(3)], grads


def ref_cholesky(a):
    """``L`` of the lower triangle, and ``dL = L Phi(L^-1 dS L^-T)`` (Phi: the lower
    triangle, the diagonal halved): the textbook derivative, not the minors."""
    with mpmath.workprec(REF_BITS):
        low = mpmath.cholesky(_mp(_lower_symmetric(a)))
        inverse = mpmath.inverse(low)
        grads = {}
        for k in range(3):
            for l in range(3):
                inner = inverse * _lower_direction(k, l) * inverse.T
                phi = mpmath.matrix([[inner[i, j] * (mpmath.mpf(1) / 2 if i == j else 1) if i >= j else 0
                                      for j in range(3)] for i in range(3)])
                dl = low * phi
                grads[k, l] = [dl[i, j] for i in range(3) for j in range(3)]
        return [low[i, j] for i in range(3) for j in range(3)], grads


def ref_eigvalsh(a):
    """Ascending eigenvalues of the lower triangle's matrix (mpmath's eigsy) and
    ``v_i^T dS v_i`` with its unit eigenvectors."""
    with mpmath.workprec(REF_BITS):
        e, q = mpmath.eigsy(_mp(_lower_symmetric(a)))
        order = sorted(range(3), key=lambda i: e[i])
        grads = {(k, l): [(q[:, i].T * _lower_direction(k, l) * q[:, i])[0] for i in order]
                 for k in range(3) for l in range(3)}
        return [e[i] for i in order], grads


def ref_svdvals(a):
    """Descending singular values (mpmath's svd_r) and ``u_i^T dA v_i``."""
    with mpmath.workprec(REF_BITS):
        u, sigma, v = mpmath.svd_r(_mp(a))
        order = sorted(range(3), key=lambda i: -sigma[i])
        grads = {(k, l): [u[k, i] * v[i, l] for i in order] for k in range(3) for l in range(3)}
        return [sigma[i] for i in order], grads


def ref_matrix_exp(a):
    """mpmath's expm, and the Frechet derivative as its series: ``D_k``, the
    derivative of ``A^k / k!`` along E, is ``(A D_(k-1) + E A^(k-1) / (k-1)!) / k``
    (not the block exponential the rules use)."""
    with mpmath.workprec(REF_BITS):
        m = _mp(a)
        grads = {}
        for k in range(3):
            for l in range(3):
                e, term, d, total = _unit(k, l), mpmath.eye(3), mpmath.zeros(3, 3), mpmath.zeros(3, 3)
                for order in range(1, 500):
                    d = (m * d + e * term) / order
                    term = m * term / order
                    total += d
                grads[k, l] = [total[i, j] for i in range(3) for j in range(3)]
        value = mpmath.expm(m)
        return [value[i, j] for i in range(3) for j in range(3)], grads


# -- comparing -------------------------------------------------------------------------------------------------

def _arb(v) -> arb:
    """An mpf as an exact ball."""
    sign, man, exp, bc = (v if isinstance(v, mpmath.mpf) else mpmath.mpf(v))._mpf_
    with flint.ctx.workprec(bc + 64):
        return arb(flint.fmpz(-int(man) if sign else int(man))) * arb(2) ** int(exp)


def assert_encloses(ball, ref, what):
    """``ball`` holds ``ref`` and is narrow (60 bits, or within 2**-100 of 0). The
    reference loses bits to the condition (2**100 for inv's derivative at 2**50):
    it is taken to 2**-250 of itself, and of the terms' scale (about 1)."""
    with flint.ctx.workprec(REF_BITS + 64):
        held = ball.overlaps(_arb(ref) + arb(0, (abs(_arb(ref)) + 1) * arb(2) ** -250))
    assert held, \
        f"{what}: ball {ball} does not hold {mpmath.nstr(ref, 20)}"
    assert ball.rel_accuracy_bits() >= 60 or ball.abs_upper() < arb(2) ** -100, f"{what}: ball {ball} too wide"


def ball_jets(formula, points, shapes=((3, 3),), bits=128):
    """The jets of ``formula`` over ``points`` (tuples of nested lists) at ``bits``, every element differentiated."""
    inputs = [np.array([p[i] for p in points], dtype=np.float64) for i in range(len(shapes))]
    saved = flint.ctx.prec
    flint.ctx.prec = bits
    try:
        return evaluate(formula, inputs, [np.ones(s, dtype=bool) for s in shapes])
    finally:
        flint.ctx.prec = saved


def _direction(key, shapes=((3, 3),)):
    """The direction index of a reference's key: (k, l) of A, ("b", k) of b."""
    if key[0] == "b":
        return 9 + key[1]
    return 3 * key[0] + key[1]


def check_balls(formula, points, reference, shapes=((3, 3),), bits=128):
    jet, marks = ball_jets(formula, points, shapes, bits)
    assert not marks.switching.any() and not marks.undecided.any()
    for p, point in enumerate(points):
        values, grads = reference(*point)
        for j, v in enumerate(values):
            assert_encloses(jet.v[p, j], v, f"value {j} at point {p}")
        for key, column in grads.items():
            part = jet.d[_direction(key, shapes)]
            for j, g in enumerate(column):
                got = arb(0) if part is None else part[p, j]
                assert_encloses(got, g, f"d value {j} / d {key} at point {p}")


OPS = {
    "det": (torch.linalg.det, ref_det),
    "slogdet": (lambda a: torch.linalg.slogdet(a).logabsdet, ref_logabsdet),
    "inv": (torch.linalg.inv, ref_inv),
    "cholesky": (torch.linalg.cholesky, ref_cholesky),
    "eigvalsh": (torch.linalg.eigvalsh, ref_eigvalsh),
    "svdvals": (torch.linalg.svdvals, ref_svdvals),
    "matrix_exp": (torch.matrix_exp, ref_matrix_exp),
}
GENERAL = [WELL, ILL]
AT = {"det": GENERAL + [SINGULAR, RANK_ONE], "slogdet": GENERAL, "inv": GENERAL,
      "cholesky": [SPD, ILL_SPD], "eigvalsh": [SPD, ILL_SPD, CLOSE], "svdvals": GENERAL + [CLOSE],
      "matrix_exp": [WELL, [[0.0, 2.0, 0.0], [-2.0, 0.0, 0.5], [0.0, 0.0, -1.0]]]}
#: The stand-in also where a determinant of 2**-1010 is what is left of terms of 15.
AT_STAND_IN = {"det": [ONE_OFF], "slogdet": [ONE_OFF], "inv": [ONE_OFF]}


@pytest.mark.parametrize("name", sorted(OPS))
def test_balls_hold_the_independent_value_and_derivatives(name):
    formula, reference = OPS[name]
    # singular values through the Gram matrix: sigma_min**2 = 81 * 2**-100 of ILL needs 100 bits more
    check_balls(formula, [(a,) for a in AT[name]], reference, bits=256 if name == "svdvals" else 128)


def test_solve_balls_hold_the_independent_solution_and_its_derivatives_along_a_and_b():
    b = [0.5, -1.25, 2.0]
    check_balls(torch.linalg.solve, [(WELL, b), (ILL, b)], ref_solve, shapes=((3, 3), (3,)))


def test_a_singular_matrix_has_determinant_exactly_zero_and_its_adjugate_exactly():
    jet, _ = ball_jets(torch.linalg.det, [(SINGULAR,), (RANK_ONE,)], bits=320)
    assert jet.v[0, 0].is_zero() and jet.v[1, 0].is_zero()
    _, grads = ref_det(SINGULAR)
    for (k, l), (g,) in grads.items():
        assert jet.d[3 * k + l][0, 0].is_exact() and jet.d[3 * k + l][0, 0] == _arb(g)
        assert jet.d[3 * k + l][1, 0].is_zero()      # rank 1: the adjugate is 0


@pytest.mark.parametrize("formula, point, why", [
    (torch.linalg.inv, SINGULAR, "no inverse"),
    (lambda a: torch.linalg.solve(a, a[0]), SINGULAR, "no solution"),
    (lambda a: torch.linalg.slogdet(a).logabsdet, RANK_ONE, "log 0"),
    (torch.logdet, [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], "log of a negative number"),
    (torch.linalg.cholesky, _mixed([1.0, 0.5, 0.0], symmetric=True), "semidefinite"),
    (torch.linalg.cholesky, _mixed([1.0, 0.5, -2.0 ** -10], symmetric=True), "indefinite"),
    (torch.linalg.eigvalsh, REPEATED, "a repeated eigenvalue"),
    (torch.linalg.svdvals, SINGULAR, "a zero singular value"),
    (torch.linalg.svdvals, REPEATED, "a repeated singular value"),
])
def test_where_no_precision_decides_the_point_is_a_switching_point(formula, point, why):
    _, marks = ball_jets(formula, [(point,)])
    assert marks.switching.tolist() == [True], why


def test_trace_and_matrix_norms_are_their_sums():
    a = np.array([WELL])
    for formula, value, grad in [
        (torch.trace, 9.0, np.eye(3)),
        (torch.linalg.matrix_norm, None, None),
        (lambda m: torch.linalg.matrix_norm(m, ord=math.inf), 5.25, [[0, 0, 0], [0, 0, 0], [-1, 1, 1]]),
        (lambda m: torch.linalg.norm(m, ord=-1), 3.5, [[1, 0, 0], [1, 0, 0], [-1, 0, 0]]),
    ]:
        records, left = solve_grid(formula, a.reshape(1, 9), np.ones((1, 1)), [True] * 9, shapes=((3, 3),))
        table = decode(records[0])
        if value is None:   # Frobenius: the vector norm of the entries
            with mpmath.workprec(200):
                norm = mpmath.sqrt(mpmath.fsum(mpmath.mpf(v) ** 2 for row in WELL for v in row))
                value, grad = float(norm), [[float(v / norm) for v in row] for row in WELL]
        assert table.value[0] == value and table.grad.tolist() == np.ravel(grad).tolist()
    # Two columns of WELL sum to 4.75: the 1-norm's kink, for the one-sided analysis.
    handover = Handover()
    solve_grid(lambda m: torch.linalg.matrix_norm(m, ord=1), a.reshape(1, 9), np.ones((1, 1)), [True] * 9, handover,
               shapes=((3, 3),))
    assert dict(handover.causes) == {"a switching point met exactly": 1}


# -- the mpmath stand-in --------------------------------------------------------------------------------------

def _close(got, ref, bits, scale=0):
    """Within ``2**-bits`` of the reference and of ``scale``, the size of the terms
    (a derivative that is 0 by coincidence, through rounded quotients, is 2**-200 of them)."""
    return abs(got - ref) <= (abs(ref) + scale) * mpmath.ldexp(1, -bits)


@pytest.mark.parametrize("name", sorted(OPS))
def test_the_mpmath_stand_in_agrees_with_the_independent_computation(name):
    formula, reference = OPS[name]
    exact = harness.exact(formula)
    for a in AT[name] + AT_STAND_IN.get(name, []):
        point = [[mpmath.mpf(v) for v in row] for row in a]
        values, grads = reference(a)
        # svdvals squares the condition in its Gram matrix: ILL's sigma_min**2 is 2**-100 of the entries
        with mpmath.workprec(300 if name == "svdvals" else 200):
            got, tangents, marked = exact.jacobian(point)
            plain = exact(point)
        got, plain = np.ravel(got).tolist(), np.ravel(plain).tolist()
        tangents = tangents if isinstance(tangents, list) else [tangents]
        tangents = [t for row in tangents for t in (row if isinstance(row, list) else [row])]
        assert marked is None
        for j, v in enumerate(values):
            # eigsy's eigenvalues are 2**-200 of the largest: 9 * 2**-50 keeps 150 bits of itself.
            size = max(abs(w) for w in values)
            assert _close(got[j], v, 180, size) and _close(plain[j], v, 180, size), (name, a, j)
            scale = max(abs(column[j]) for column in grads.values())
            for (k, l), column in grads.items():
                assert _close(tangents[j].get(3 * k + l, mpmath.mpf(0)), column[j], 150, scale), (name, a, j, k, l)


def test_the_stand_in_solves_along_a_and_b_and_signs_its_determinants():
    b = [0.5, -1.25, 2.0]
    exact = harness.exact(torch.linalg.solve)
    for a in (WELL, ILL):
        values, grads = ref_solve(a, b)
        with mpmath.workprec(200):
            got, tangents, marked = exact.jacobian([[mpmath.mpf(v) for v in row] for row in a],
                                                   [mpmath.mpf(v) for v in b])
        assert marked is None
        for j, v in enumerate(values):
            scale = max(abs(column[j]) for column in grads.values())
            assert _close(got[j], v, 150, scale)
            for key, column in grads.items():
                assert _close(tangents[j].get(_direction(key), mpmath.mpf(0)), column[j], 150, scale), (a, j, key)
    sign = harness.exact(lambda a: torch.linalg.slogdet(a).sign)
    assert [float(sign([[mpmath.mpf(v) for v in row] for row in a])) for a in (WELL, ILL, SINGULAR)] == [1, -1, 0]
    jet, _ = ball_jets(lambda a: torch.linalg.slogdet(a)[0], [(WELL,), (ILL,)])
    assert [float(v) for v in jet.v[:, 0]] == [1, -1] and all(d is None for d in jet.d)


def test_a_zero_singular_value_is_exactly_zero_in_the_stand_in_and_a_kink_for_the_engine():
    """Rank 2: sigma_3 = |t| along a direction off the matrix's range, exactly 0
    at any precision, and the engine finds the kink (one-sided quotients +-|u3^T E v3|)."""
    with mpmath.workprec(200):
        got = harness.exact(torch.linalg.svdvals)([[mpmath.mpf(v) for v in row] for row in SINGULAR])
    assert np.ravel(got)[2] == 0
    g = [1.125, 0.5, 1.625]
    truth = solve_point(_FlatReference(harness.exact(torch.linalg.svdvals), ((3, 3),), 3),
                        list(np.ravel(SINGULAR)), g, [harness.domains.real()] * 9)
    assert all(truth.kink)


def test_cond_and_the_singular_value_norms_are_ratios_and_sums_of_the_singular_values():
    values, _ = ref_svdvals(WELL)
    big, small = float(values[0]), float(values[2])
    for formula, expected in [(torch.linalg.cond, big / small), (lambda a: torch.linalg.cond(a, -2), small / big),
                              (lambda a: torch.linalg.matrix_norm(a, 2), big),
                              (lambda a: torch.linalg.matrix_norm(a, -2), small),
                              (lambda a: torch.linalg.matrix_norm(a, "nuc"), float(sum(values)))]:
        jet, marks = ball_jets(formula, [(WELL,)])
        assert not marks.switching.any()
        assert abs(float(jet.v.reshape(-1)[0].mid()) - expected) <= 1e-14 * expected


def test_the_stand_in_marks_what_the_balls_mark():
    for formula, point in [(torch.linalg.inv, SINGULAR), (torch.linalg.eigvalsh, REPEATED),
                           (torch.linalg.svdvals, SINGULAR),
                           (torch.linalg.cholesky, _mixed([1.0, 0.5, 0.0], symmetric=True))]:
        _, _, marked = harness.exact(formula).jacobian([[mpmath.mpf(v) for v in row] for row in point])
        assert marked is not None


def test_both_engines_give_the_same_truths():
    """The grid's balls and the mpmath engine point by point, at a singular, an
    ill-conditioned and a nearly repeated spectrum: the same rounding of value
    and VJP, and the same zeros."""
    domains = [harness.domains.real()] * 9
    for formula, a, out in [(torch.linalg.det, SINGULAR, 1), (torch.linalg.inv, ILL, 9), (torch.linalg.inv, ONE_OFF, 9),
                            (torch.linalg.cholesky, ILL_SPD, 9), (torch.linalg.eigvalsh, CLOSE, 3)]:
        cotangent = np.arange(1, out + 1) / 8.0
        records, left = solve_grid(formula, np.array(a).reshape(1, 9), cotangent.reshape(1, -1), [True] * 9,
                                   shapes=((3, 3),), domains=domains)
        assert left == []
        ours = decode(records[0])
        theirs = solve_point(_FlatReference(harness.exact(formula), ((3, 3),), out), list(np.ravel(a)),
                             list(cotangent), domains)
        assert ours.value.tolist() == [float(v) for v in theirs.value]
        assert ours.grad.tolist() == [float(g) for g in theirs.grad]


def test_a_zero_gradient_of_a_rank_one_determinant_is_scaled_by_its_paths():
    # The adjugate of a rank-1 matrix is 0, from products of size 1 to 36: torch's 1e-16 there is rounding.
    records, left = solve_grid(torch.linalg.det, np.array(RANK_ONE).reshape(1, 9), np.ones((1, 1)), [True] * 9,
                               shapes=((3, 3),))
    table = decode(records[0])
    assert table.value[0] == 0 and not table.grad.any() and (table.grad_scale > 0).all()


def test_a_matrix_past_the_expansion_is_refused_by_name():
    big = np.eye(7).reshape(1, 1, 7, 7)
    with pytest.raises(BallUnsupported, match="det of a 7 x 7 matrix"):
        ball_jets(torch.linalg.det, [(np.eye(7),)], shapes=((7, 7),))
    with pytest.raises(ExactUnsupported, match="torch.linalg.det of a 7 x 7"):
        harness.exact(torch.linalg.det)(big[0, 0].tolist())


@pytest.mark.parametrize("ex, plain, out", [
    (lambda a: torch.linalg.inv_ex(a).inverse, torch.linalg.inv, 9),
    (lambda a: torch.linalg.cholesky_ex(a)[0], torch.linalg.cholesky, 9),
    (lambda a: torch.linalg.solve_ex(a, a[:, 0]).result, lambda a: torch.linalg.solve(a, a[:, 0]), 3),
])
def test_the_ex_twins_are_their_ops(ex, plain, out):
    x = np.array([SPD, ILL_SPD]).reshape(2, 9)
    ours = [solve_grid(f, x, np.ones((2, out)), [True] * 9, shapes=((3, 3),))[0] for f in (ex, plain)]
    assert sorted(ours[0]) == [0, 1] and ours[0] == ours[1]
    point = [[mpmath.mpf(v) for v in row] for row in SPD]
    assert harness.exact(ex)(point) == harness.exact(plain)(point)
