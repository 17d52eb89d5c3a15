"""A structured grid's claims in one call stand in for one call per point only
where every row is, bit for bit, what the one-point call returns."""

import numpy as np
import pytest
import torch

import harness
from harness.truth.cache import TruthCache, code_fingerprint


def logsumexp_naive(a):
    return torch.log(torch.exp(a).sum(-1))


reference = harness.exact(lambda a: torch.log(torch.exp(a).sum(-1)))


def case(forward, name="lse"):
    return harness.Case(name, forward, reference, shape=(4,))


def digest(report) -> tuple:
    """What a report says, without its timings."""
    return (str(report), report.ok, sorted(report.kinds), report.counts)


def test_a_broadcasting_forward_is_called_once_the_second_time_with_the_same_report():
    cache = TruthCache(None)
    first = harness.certify(case(logsumexp_naive), torch.float32, cache=cache)
    second = harness.certify(case(logsumexp_naive), torch.float32, cache=cache)
    assert first.stats["claims"] == "checked" and second.stats["claims"] == "batched"
    assert digest(first) == digest(second)
    assert not second.ok   # the naive formula overflows: the batch changed no verdict


def single_point_only_bug(a):
    """Planted: right for a batch (stacked, or under vmap), wrong (the max entry
    dropped) for the one point the user calls it on: a kernel that takes
    another path for a batch."""
    if a.dim() > 1 or torch._C._functorch.is_batchedtensor(a):
        return torch.logsumexp(a, -1)
    return torch.log(torch.exp(a).sum(-1) - torch.exp(a.max()) * 1e-3)


def test_a_batch_that_differs_from_the_one_point_call_is_not_used():
    cache = TruthCache(None)
    for _ in range(2):
        report = harness.certify(case(single_point_only_bug, "differs"), torch.float64, cache=cache)
        assert report.stats["claims"] == "one by one"
        assert "lost-digits" in report.kinds, str(report)   # judged on the user's call, twice


def whole_tensor_mean(a):
    return torch.exp(a).mean()   # no batch dimension: a stacked batch gives one number


def test_a_forward_that_does_not_broadcast_is_mapped_over_the_batch():
    cache = TruthCache(None)
    reports = [harness.certify(harness.Case("mean", whole_tensor_mean, None, shape=(3,)), torch.float32, cache=cache)
               for _ in range(2)]
    assert [r.stats["claims"] for r in reports] == ["checked", "batched"]
    assert reports[0].counts["judged"] > 0 and digest(reports[0]) == digest(reports[1])


def branchy(a):
    return torch.exp(a).sum() if a.sum() > 0 else -torch.exp(a).sum()   # a Python branch on a value


def test_a_forward_no_batch_can_take_is_called_point_by_point():
    cache = TruthCache(None)
    for _ in range(2):
        report = harness.certify(harness.Case("branchy", branchy, None, shape=(3,)), torch.float32, cache=cache)
        assert report.stats["claims"] == "one by one" and report.counts["judged"] > 0


class Scaled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        return 2 * g


class ScaledWrong(Scaled):
    @staticmethod
    def backward(ctx, g):
        return 3 * g


def test_the_record_is_keyed_by_the_code_of_a_function_s_methods():
    assert code_fingerprint(Scaled.apply) != code_fingerprint(ScaledWrong.apply)
    assert code_fingerprint(lambda x: Scaled.apply(x)) != code_fingerprint(lambda x: ScaledWrong.apply(x))
    assert code_fingerprint(Scaled.apply) == code_fingerprint(Scaled.apply)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_batched_rows_equal_the_one_point_calls_on_a_shipped_family(dtype):
    """Where the record says the batch is the same call, each row is the one-point call, bit for bit."""
    import cases.softplus as family
    from harness.certify import _Options
    from harness.claims.claimed import _call
    from harness.inputs.samples import _grid
    chosen = next(c for c in family.CASES if c.name == "logsumexp.torch")
    cache = TruthCache(None)
    harness.certify(chosen, dtype, cache=cache)
    if harness.certify(chosen, dtype, cache=cache).stats["claims"] != "batched":
        pytest.skip(f"{dtype}: the batch differs from the one-point calls, so it is not used")
    samples = _grid(chosen, dtype, _Options())[0]
    shape = samples[-1].arrays[0].shape
    samples = [s for s in samples if s.arrays[0].shape == shape]
    arrays = tuple(np.stack([s.arrays[k] for s in samples]) for k in range(len(samples[0].arrays)))
    output, grads, _, _ = _call(chosen, arrays, dtype, "cpu", len(samples))
    for j, s in enumerate(samples[:: max(1, len(samples) // 50)]):
        k = j * max(1, len(samples) // 50)
        one_output, one_grads, _, _ = _call(chosen, s.arrays, dtype, "cpu")
        assert np.array_equal(output[k], one_output, equal_nan=True)
        assert all(np.array_equal(g[k], h, equal_nan=True) for g, h in zip(grads, one_grads))


FAMILIES = ["bernoulli", "elbo", "hand_derived", "iwae", "lrn", "norm2", "sigmoid_loss", "softplus", "sparsity"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_shipped_structured_case_claims_what_its_one_point_calls_give(family, dtype):
    """A warm run's claims (from the batch, where its record says so) against
    the one-point calls, every point of every structured case of a family."""
    import importlib

    from harness.certify import _Options, prepare
    from harness.claims.claimed import _call
    from harness.inputs.samples import _grid

    module = importlib.import_module(f"cases.{family}")
    structured = [c for c in module.CASES if not c.elementwise and dtype in c.dtypes]
    cache = TruthCache(None)
    batched = 0
    for chosen in structured:
        options = _Options(cache=cache)
        samples = _grid(chosen, dtype, options)[0]
        if len(samples) < 2:
            continue
        prepare(chosen, dtype, "cpu", options)            # checked, and recorded
        warm = prepare(chosen, dtype, "cpu", options)     # from the record
        batched += warm.claims in ("batched", "mixed")
        for s in warm.samples:
            output, grads, _, cotangent = _call(chosen, s.arrays, dtype, "cpu")
            assert np.array_equal(s.output, output, equal_nan=True), (chosen.name, s.arrays)
            assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(s.grads, grads)), (chosen.name, s.arrays)
            assert np.array_equal(s.cotangent, cotangent)
    assert structured == [] or batched > 0 or family in ("lrn", "hand_derived", "sigmoid_loss")
