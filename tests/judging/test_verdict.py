"""Per-entry verdicts against the truth (harness.judging.verdict)."""

import numpy as np
import torch

from harness.inputs.floats import fmt
from harness.judging.kinds import KIND_NAMES
from harness.judging.verdict import against_finite_differences, against_truth


def kinds(claimed, truth, dtype=torch.float32, allowed=8.0):
    kind, _, _ = against_truth(np.array(claimed), np.array(truth), np.full(len(claimed), allowed), fmt(dtype),
                               np.zeros(len(claimed), bool))
    return [KIND_NAMES[k] if k >= 0 else None for k in kind]


def test_a_flush_to_zero_below_the_smallest_normal_is_underflow_not_silent_zero():
    tiny32, tiny16 = 2.0 ** -126, 2.0 ** -14
    assert kinds([0.0, 0.0, 1e-40, tiny32], [1e-40, -1.0, 0.0, 3e-39]) == \
        ["underflow", "silent-zero", "underflow", "underflow"]
    # A subnormal truth missed by more than the smallest normal, or with the wrong sign, is no flush.
    assert kinds([3 * tiny32, -1e-40], [1e-40, 1e-40]) == ["lost-digits", "wrong-sign"]
    # float16's subnormals are 6e-8 to 6e-5.
    assert kinds([0.0, 0.0], [6e-5, 2 * tiny16], torch.float16) == ["underflow", "silent-zero"]


def test_a_nan_claim_keeps_the_finite_difference_estimate():
    bad, informative = against_finite_differences(np.array([np.nan, 1.0]), np.array([1.0, 1.0]),
                                                  np.array([1e-6, 1e-6]), np.array([16.0, 16.0]),
                                                  fmt(torch.float32))
    assert informative.tolist() == [True, True] and bad.tolist() == [True, False]


def test_a_defect_only_a_dense_sweep_holds_is_required_there_and_allowed_to_pass_on_a_grid():
    from harness.judging.expectations import convicted
    from harness.judging.verdict import meets

    window = convicted("non-finite", dense_only=True)
    assert meets(window, True, set(), [], dense=False) is None
    assert "must be convicted" in meets(window, True, set(), [], dense=True)
    assert meets(window, False, {"non-finite"}, [1e-26], dense=True) is None
    assert "also fails with lost-digits" in meets(window, False, {"non-finite", "lost-digits"}, [1.0], dense=False)
    assert "must be convicted" in meets(convicted("non-finite"), True, set(), [], dense=False)
