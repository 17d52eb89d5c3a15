"""The rounding depth of the code under test: each rounding operation on the
longest chain counts once, exact ones not at all, a sum of n terms by the depth
of pairwise summation, and the backward continues from the forward's chain."""

import pytest
import torch
import torch.nn.functional as F

from harness.claims.rounding_depth import depths


def f64(*shape):
    return torch.rand(*shape, dtype=torch.float64).requires_grad_()


def test_each_rounding_step_on_the_chain_counts_once():
    x = f64(4)
    assert depths(lambda x: torch.exp(x), (x,)).value == 1
    assert depths(lambda x: torch.log(torch.exp(x) + 1), (x,)).value == 3
    assert depths(lambda x: x * 1.1 * 1.1 * 1.1 * 1.1, (x,)).value == 4


def test_branches_count_by_the_longest_not_their_sum():
    x = f64(4)
    short, long = depths(lambda x: torch.exp(x), (x,)).value, depths(lambda x: torch.exp(torch.sin(x * 2)), (x,)).value
    assert depths(lambda x: torch.exp(x) + torch.exp(torch.sin(x * 2)), (x,)).value == max(short, long) + 1


@pytest.mark.parametrize("exact", [
    lambda x: -x, lambda x: x.abs(), lambda x: x.clamp(0.2, 0.8), lambda x: torch.where(x > 0.5, x, -x),
    lambda x: x.reshape(2, 2).T.flip(0), lambda x: torch.cat([x, x]), lambda x: x[1:3].clone(),
    lambda x: torch.maximum(x, x.flip(0)), lambda x: F.pad(x[None], (1, 1), mode="reflect"),
])
def test_operations_that_never_round_add_nothing(exact):
    x = f64(4)
    assert depths(lambda x: torch.exp(exact(x)), (x,)).value == 1


def test_a_sum_adds_the_depth_of_pairwise_summation():
    assert depths(lambda x: x.sum(), (f64(1024),)).value == 1 + 10
    assert depths(lambda a: a @ a.T, (f64(3, 64),)).value == 1 + 6
    conv = depths(lambda x: F.conv2d(x, torch.ones(2, 3, 3, 3, dtype=torch.float64)), (f64(1, 3, 5, 5),))
    assert conv.value == 1 + 5   # 27 terms per output


def test_a_narrowing_conversion_rounds_and_a_widening_one_does_not():
    x = f64(4)
    assert depths(lambda x: x.float(), (x,)).value == 1
    assert depths(lambda x: x.float().double(), (x,)).value == 1


def test_the_gradient_continues_from_the_forward_chain():
    x = f64(4)
    d = depths(lambda x: torch.log(torch.exp(x) + 1), (x,))
    assert d.gradient > d.value
    assert depths(lambda x: torch.exp(x), (x.detach(),)).gradient is None   # nothing requires grad
