"""harness.truth.ball: truths proven by enclosure, a grid per pass.

Planted formulas whose balls cannot decide give a proven truth, a point handed
to the mpmath engine with its cause, or a ``CaseError``: never a wrong number.
Agreement with the mpmath engine over torch's ops is in tests/truth/test_derivative_truth.py."""

from __future__ import annotations

import math

import flint
import mpmath
import numpy as np
import pytest
import torch

import harness
from harness.truth.cache import TruthCache
from harness.truth.flat_reference import _FlatReference
from harness.inputs.floats import FORMATS
from harness.truth.ball import Handover, _decided, solve_grid, solve_tasks
from harness.truth.pool import Task
from harness.truth.table import decode

arb = flint.arb


def solved(formula, xs, active=(True,)):
    """``(truth tables by row, rows left, causes)`` of ``formula`` at the points ``xs``."""
    x = np.array(xs, dtype=np.float64).reshape(len(xs), -1)
    handover = Handover()
    records, left = solve_grid(formula, x, np.ones(len(x)), list(active), handover)
    return {k: decode(r) for k, r in records.items()}, left, dict(handover.causes)


def test_a_ball_decides_where_it_rounds_once_in_every_format():
    with flint.ctx.workprec(128):
        around_one = arb(1) + arb("0 +/- 1e-30")       # holds 1, a number of every format
        around_mid = arb(1 + 2.0 ** -24) + arb("0 +/- 1e-30")   # holds float32's midpoint
        wide = arb(1) / 3 + arb("0 +/- 1e-10")          # two float64s
        tiny = arb("0 +/- 1e-400")                      # ±0 in every format
        decided = _decided(np.array([arb(0.5), around_one, around_mid, wide, tiny, arb("nan")], dtype=object))
    assert decided.tolist() == [True, True, False, False, True, False]


def test_one_minus_sigmoid_at_huge_x_is_proven_by_its_distance_from_one():
    # exp(-x) / (1 + exp(-x)): 0 in every format at 1e30 and 6720, exp(-100) at 100.
    tables, left, causes = solved(lambda x: 1 - torch.sigmoid(x), [[1e30], [6720.0], [100.0]])
    assert left == [] and causes == {}
    assert tables[0].value[0] == 0 and tables[1].value[0] == 0
    truth = mpmath.exp(-100) / (1 + mpmath.exp(-100))
    assert tables[2].value[0] == float(truth)
    assert tables[2].grad[0] == float(-truth * (1 - truth))
    # The value's condition number from the enclosure of f': x f'/f = x (1 - sigmoid x);
    # below 2**-32768 a result is 0 (as harness.exact flushes it), its condition infinite.
    assert tables[2].value_kappa[0] == pytest.approx(100) and tables[0].value_kappa[0] == math.inf


def test_a_cancellation_to_zero_is_zero_where_the_ball_says_so_and_handed_over_where_not():
    tables, left, causes = solved(lambda x: torch.exp(x) - torch.exp(x), [[0.5], [1e30]])
    # At 0.5 the ball at 4096 bits is within 2**-4000 of 0: ±0 in every format.
    assert tables[0].value[0] == 0 and tables[0].grad[0] == 0
    # exp(1e30) - exp(1e30): no precision of the schedule brings the radius under 2**-1075.
    assert left == [1] and causes == {"undecided at 4096 bits": 1}


def test_a_zero_that_paths_cancel_to_is_scaled_by_the_paths_as_the_mpmath_engine_does():
    # d/dx (3x - 3x) is 0 from terms of 3 and 3 (test_derivative_truth's twin); x * 0 has none.
    tables, left, _ = solved(lambda x: x * 3 - x * 3, [[0.7]])
    assert left == [] and tables[0].grad[0] == 0 and tables[0].grad_scale[0] == pytest.approx(6.0)
    tables, left, _ = solved(lambda x: x * 0.0 + 1, [[0.7]])
    assert left == [] and tables[0].grad[0] == 0 and tables[0].grad_scale[0] == 0.0


def test_the_handed_over_cancellation_is_zero_by_the_mpmath_engine():
    case = harness.Case("planted.e-e", lambda x: x * 0,
                        harness.exact(lambda x: torch.exp(x) - torch.exp(x)),
                        domain=harness.domains.interval(1e29, 2e30), grid=lambda dtype: [(1e30,)])
    report = harness.certify(case, torch.float64, cache=TruthCache(None))
    assert report.ok, str(report)


def test_a_product_past_every_format_is_infinite_with_its_condition_numbers():
    tables, left, _ = solved(lambda x: torch.exp(x) * torch.exp(x), [[1e30], [100.0]])
    assert left == []
    assert tables[0].value[0] == math.inf and tables[0].grad[0] == math.inf
    # In balls exp(2e30) is a number: the value's condition number is 2x, and the
    # gradient moved by 2**-24 grows by e**(1.2e23): past every float, as the mpmath engine reads it.
    assert tables[0].value_kappa[0] == pytest.approx(2e30) and tables[0].grad_kappa[0] == math.inf
    assert tables[1].value[0] == float(mpmath.exp(200))
    assert tables[1].grad_kappa[0] == pytest.approx(200, rel=1e-5)


def test_a_formula_that_draws_a_random_number_is_handed_over_then_an_error():
    noisy = lambda x: x * torch.rand(())   # noqa: E731
    tables, left, causes = solved(noisy, [[0.5], [2.0], [3.0]])
    assert tables == {} and left == [0, 1, 2]
    assert causes == {"not a function of its inputs (two evaluations disagree)": 3}
    case = harness.Case("planted.random", lambda x: x, harness.exact(noisy), grid=lambda dtype: [(0.5,)])
    with pytest.raises(harness.CaseError, match="never converged"):
        harness.certify(case, torch.float64, cache=TruthCache(None))


def test_a_switching_point_met_exactly_is_handed_over_at_once():
    tables, left, causes = solved(torch.abs, [[-2.0], [0.0], [3.0]])
    assert left == [1] and causes == {"a switching point met exactly": 1}
    assert tables[0].grad[0] == -1 and tables[2].grad[0] == 1


def test_an_operation_without_a_ball_rule_hands_the_grid_over_by_name():
    tables, left, causes = solved(torch.special.entr, [[0.5], [2.0]])   # the mpmath stand-in has it (ATen level)
    assert tables == {} and left == [0, 1]
    assert causes == {"no ball rule: special_entr": 2}


def test_infinite_inputs_are_limits_for_the_mpmath_engine():
    tables, left, causes = solved(torch.exp, [[math.inf], [1.0]])
    assert left == [0] and causes == {"±inf or NaN inputs (limits)": 1}


def test_labels_are_not_differentiated():
    tables, left, _ = solved(lambda x, y: x * torch.log(y), [[2.0, 3.0]], active=(False, True))
    assert left == []
    assert math.isnan(tables[0].grad[0]) and tables[0].grad[1] == float(mpmath.mpf(2) / 3)


@pytest.mark.parametrize("formula, x, value, grad", [
    (lambda x: torch.log(torch.cosh(x)), 1e-22, float(mpmath.mpf(1e-22) ** 2 / 2), 1e-22),
    (lambda x: torch.log1p(torch.exp(x)), 0.0, float(mpmath.log(2)), 0.5),
    (lambda x: torch.log(1 + torch.exp(x)), -1e30, 0.0, 0.0),
])
def test_the_issue_points(formula, x, value, grad):
    tables, left, _ = solved(formula, [[x]])
    assert left == []
    assert tables[0].value[0] == value and tables[0].grad[0] == grad


def test_exact_formulas_take_part_and_hand_written_references_do_not():
    tasks = [Task(_FlatReference(harness.exact(torch.exp), ((),), 1), [1.0], [1.0], [harness.domains.real()]),
             Task(lambda v: [mpmath.exp(v[0])], [1.0], [1.0], [harness.domains.real()]),
             Task(_FlatReference(harness.exact(lambda z: z.sum()), ((2,),), 1), [1.0, 2.0], [1.0],
                  [harness.domains.real()] * 2)]
    kept = {}
    assert solve_tasks(tasks, keep=kept.__setitem__) == [1]
    table = decode(kept[0])
    for dtype, f in FORMATS.items():
        assert table.value_in(f)[0] == torch.tensor(float(mpmath.e), dtype=torch.float64).to(dtype).item()
    assert decode(kept[2]).value.tolist() == [3.0] and decode(kept[2]).grad.tolist() == [1.0, 1.0]


def test_a_structured_point_is_judged_with_its_vjp_and_condition_numbers():
    # -log_softmax(z)[0] over 3 logits: the VJP is softmax(z) - e_0.
    z = [0.5, -1.0, 2.0]
    x = np.array([z])
    records, left = solve_grid(lambda v: -torch.log_softmax(v, -1)[..., 0], x, np.ones((1, 1)), [True] * 3,
                               shapes=((3,),))
    assert left == []
    table = decode(records[0])
    with mpmath.workprec(200):
        e = [mpmath.exp(mpmath.mpf(v)) for v in z]
        s = [v / sum(e) for v in e]
        assert table.value[0] == float(-mpmath.log(s[0]))
        assert table.grad.tolist() == [float(s[0] - 1), float(s[1]), float(s[2])]


def test_a_structured_gradient_reads_its_condition_at_moved_points_as_the_mpmath_engine_does():
    """layer_norm of a constant row: the gradient's first derivative there is 0,
    but a move by float32's rounding takes the variance past eps and changes
    the gradient completely. The budget must allow that: both engines read the
    condition number 2**24 at a row of 1.8e19 (and about 25 to 52 at 84.6)."""
    from harness.truth.flat_reference import _FlatReference
    from harness.truth.point import solve_point

    formula = lambda v: torch.nn.functional.layer_norm(v, v.shape[-1:])   # noqa: E731
    reference = _FlatReference(harness.exact(formula), ((4,),), 4)
    cotangent = [0.125, 0.25, 0.375, 0.5]
    for row in ([1.8446744e19] * 4, [84.6434] * 4):
        records, left = solve_grid(formula, np.array([row]), np.array([cotangent]), [True] * 4,
                                   shapes=((4,),), domains=[harness.domains.real()] * 4)
        ours = decode(records[0])
        theirs = solve_point(reference, row, cotangent, [harness.domains.real()] * 4)
        assert ours.grad_kappa.tolist() == pytest.approx(theirs.grad_kappa, rel=1e-6)
    assert ours.grad_kappa.max() > 16


def test_a_structured_point_of_many_elements_is_proven():
    records, left, _ = solved_shape(lambda v: torch.logsumexp(v, -1), np.arange(32.0).reshape(1, 32), ((32,),))
    assert left == []
    with mpmath.workprec(200):
        assert decode(records[0]).value[0] == float(mpmath.log(mpmath.fsum(mpmath.exp(k) for k in range(32))))


def solved_shape(formula, x, shapes):
    handover = Handover()
    records, left = solve_grid(formula, x, np.ones((len(x), 1)), [True] * x.shape[1], handover, shapes=shapes)
    return records, left, dict(handover.causes)


def test_the_largest_entry_and_the_inf_norm_are_proven_where_no_entries_tie():
    # amax's gradient is the largest entry's; |x|'s largest for the inf-norm. Tied
    # entries (torch splits the gradient among them) are switching points.
    x = np.array([[0.5, -3.0, 2.0], [1.0, 1.0, -0.25], [0.5, -0.75, 0.25]])
    for formula, grads in [(lambda v: torch.amax(v, -1), {0: [0, 0, 1], 2: [1, 0, 0]}),
                           (lambda v: torch.linalg.vector_norm(v, math.inf, -1), {0: [0, -1, 0], 2: [0, -1, 0]})]:
        handover = Handover()
        records, left = solve_grid(formula, x, np.ones((3, 1)), [True] * 3, handover, shapes=((3,),))
        assert left == [1] and dict(handover.causes) == {"a switching point met exactly": 1}
        for row, grad in grads.items():
            assert decode(records[row]).grad.tolist() == grad
            assert decode(records[row]).value[0] == float(np.max(np.abs(x[row])) if grad[1] else np.max(x[row]))


def test_a_formula_that_checks_its_input_is_a_tensor_is_proven_by_balls():
    def checked(v):
        if not isinstance(v, torch.Tensor) or v.dim() != 1 or v.dtype != torch.float64:
            raise TypeError(f"Input type is not a torch.Tensor. Got {type(v)}")
        return torch.logsumexp(v, dim=0)
    handover = Handover()
    records, left = solve_grid(checked, np.array([[0.5, -3.0, 2.0], [1e3, 1e3, -1e3]]), np.ones(2), [True] * 3,
                               handover, shapes=((3,),))
    assert sorted(records) == [0, 1] and left == [] and not handover.causes


def test_forward_mode_too_large_for_balls_is_handed_over_by_name_not_run_out_of_memory():
    centres = torch.linspace(0, 1, 600, dtype=torch.float64)
    histogram = lambda v: torch.exp(-(v.reshape(-1, 1) - centres) ** 2).sum(0)   # 1024 x 600 per point
    handover = Handover()
    x = np.random.default_rng(0).random((2, 1024))
    records, left = solve_grid(histogram, x, np.ones((2, 600)), [True] * 1024, handover, shapes=((1024,),))
    assert records == {} and left == [0, 1]
    (cause,) = handover.causes
    assert "forward mode over 1024 directions" in cause
    small = np.random.default_rng(0).random((2, 8))   # the same formula on a small input: proven
    records, left = solve_grid(histogram, small, np.ones((2, 600)), [True] * 8, Handover(), shapes=((8,),))
    assert sorted(records) == [0, 1]
