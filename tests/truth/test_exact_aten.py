"""harness.exact at the ATen level (harness/truth/exact_aten.py, exact_aten_ops.py):
what the function-level table lacks is taken through torch's C++ code, op by
op, to exact implementations or torch's own decompositions; checked against
torch in float64, against mpmath sums where float64 loses everything, in
derivatives against autograd, for aliasing and in-place writes, and for the
refusals and the named errors."""

from __future__ import annotations

import re
from pathlib import Path

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import harness
from harness.truth import exact_aten
from harness.truth.exact import ExactUnsupported, exact

mpf = mpmath.mpf
RNG = np.random.default_rng(31)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "exact.md"


def at(reference, *inputs, bits: int = 80):
    with mpmath.workprec(bits):
        return reference(*inputs)


def mp(x: np.ndarray):
    """A float64 array as the truth engine passes it: mpf, or nested lists of them."""
    return mpf(float(x)) if np.ndim(x) == 0 else np.frompyfunc(mpf, 1, 1)(x).tolist()


def floats(v) -> np.ndarray:
    return np.asarray(v, dtype=object).astype(np.float64)


def normal(*shape):
    return RNG.normal(size=shape)


def assert_matches_torch(fn, *inputs, rtol=1e-14):
    """exact(fn) against torch's float64, to rtol of the result's scale (a sum
    of products rounds to a few ulps of its terms in float64, not of itself)."""
    want = fn(*[torch.from_numpy(x) for x in inputs])
    got = at(exact(fn), *[mp(x) for x in inputs])
    if isinstance(want, tuple):
        for w, g in zip(want, got):
            np.testing.assert_allclose(floats(g), w.double().numpy(), rtol=rtol, atol=rtol * w.abs().max().item())
        return
    want = want.double().numpy()
    np.testing.assert_allclose(floats(got), want, rtol=rtol, atol=rtol * np.abs(want).max())


X4 = normal(2, 4, 5, 6)
GRID = RNG.uniform(-1.2, 1.2, size=(2, 3, 4, 2))

OPS = {
    "conv1d stride padding groups": (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=2, groups=2),
                                     normal(2, 4, 9), normal(6, 2, 3), normal(6)),
    "conv2d stride padding dilation": (lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
                                       X4, normal(3, 4, 3, 2)),
    "conv2d groups": (lambda x, w: F.conv2d(x, w, padding=1, groups=4), X4, normal(8, 1, 3, 3)),
    "conv3d": (lambda x, w, b: F.conv3d(x, w, b, stride=(1, 2, 1), padding=1), normal(1, 2, 3, 4, 5),
               normal(3, 2, 2, 3, 2), normal(3)),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
                         X4, normal(4, 3, 3, 2)),
    "grid_sample align_corners=False": (lambda x, g: F.grid_sample(x, g, align_corners=False), X4, GRID),
    "grid_sample align_corners=True": (lambda x, g: F.grid_sample(x, g, align_corners=True), X4, GRID),
    "grid_sample border": (lambda x, g: F.grid_sample(x, g, padding_mode="border", align_corners=True), X4, GRID),
    "pad reflect": (lambda x: F.pad(x, (1, 2, 3, 0), mode="reflect"), X4),
    "pad replicate": (lambda x: F.pad(x, (2, 1, 0, 3), mode="replicate"), X4),
    "pad circular": (lambda x: F.pad(x, (1, 2, 2, 1), mode="circular"), X4),
    "pad reflect 1d, replicate 3d": (lambda x: F.pad(x[0], (2, 1), mode="reflect").sum()
                                     + F.pad(x, (1, 1, 1, 0, 0, 1), mode="replicate").sum(), X4),
    "pad constant, negative": (lambda x: F.pad(x, (-1, 2, 1, -2), value=0.5), X4),
    "einsum ...": (lambda a, b: torch.einsum("...ij,...jk->...ik", a, b) + torch.einsum("b...i,b...i->b...", a, a)
                   [..., None], normal(2, 3, 4), normal(2, 4, 4)),
    "einsum diagonal": (lambda a: torch.einsum("ii->i", a[0, :3, :3]) + torch.einsum("bii->b", a[:, :3, :3]).sum(),
                        normal(2, 3, 4)),
    "diagonal offsets": (lambda a: torch.cat([a.diagonal(1).flatten(), a.diagonal(-1, 1, 2).flatten(),
                                              torch.diagonal(a, 2, 0, 2).flatten()]), normal(3, 4, 5)),
    "kl_div": (lambda a, p: F.kl_div(a, p, reduction="batchmean") + F.kl_div(a, p.log(), reduction="sum",
                                                                               log_target=True),
               normal(3, 4), RNG.uniform(0.1, 1.0, size=(3, 4))),
    "scatter_add_": (lambda a, s: a.clone().scatter_add_(1, torch.tensor([[0, 1, 0], [3, 3, 3]]), s)
                     + torch.scatter_add(a, 0, torch.tensor([[1, 0, 1, 1]]), s[:1, :1].expand(1, 4)),
                     normal(2, 4), normal(2, 3)),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2) .sum() + F.max_pool2d(x, (3, 2), stride=(1, 2), padding=1).sum(), X4),
    "max_pool2d indices": (lambda x: F.max_pool2d(x, 2, return_indices=True)[1].double(), X4),
    "sort": (lambda a: torch.sort(a, dim=1, descending=True).values + torch.sort(a, 0).indices
             + a.sort(stable=True).values, normal(3, 4)),
    "round": (lambda a: torch.round(a * 2.7) + torch.round(a, decimals=2) + torch.round(a * 1e3, decimals=-2),
              np.concatenate([normal(6), [0.5, 1.5, 2.5, -0.5, -2.5]])),
    "remainder, fmod, floor_divide": (lambda a, b: torch.remainder(a, b) + torch.remainder(a, -0.7)
                                      + torch.remainder(-a, 0.3) + torch.fmod(a, b) + torch.fmod(-a, 0.3)
                                      + torch.floor_divide(a, b) + torch.div(a, b, rounding_mode="trunc"),
                                      3 * normal(8), normal(8)),
    "median": (lambda a: a.median(1).values + a.median(0, keepdim=True).values.sum() + a.median(), normal(3, 5)),
    "addcmul": (lambda a, b, c: torch.addcmul(a, b, c, value=0.5) + a.addcmul(b, c), normal(5), normal(5), normal(5)),
    "linalg.cross": (lambda a, b: torch.linalg.cross(a, b) + torch.cross(a, b, dim=1), normal(4, 3), normal(4, 3)),
}


@pytest.mark.parametrize("name", list(OPS))
def test_an_aten_level_operation_matches_torch_in_float64(name):
    fn, *inputs = OPS[name]
    assert_matches_torch(fn, *inputs)


def test_integer_operands_stay_integers_as_in_torch():
    def fn(x):
        i = torch.arange(-4, 5) * 3
        r = torch.remainder(i, 5) * 100 + torch.fmod(i, -5) * 10 + torch.floor_divide(i, 4)
        assert r.dtype == torch.int64
        return x * r + torch.sort(i.flip(0)).values + torch.round(i)
    assert at(exact(fn), mpf(1)) == floats(fn(torch.tensor(1.0, dtype=torch.float64))).tolist()


# -- exactly, where float64 loses everything --------------------------------------------------------------

def test_a_convolution_sums_exactly():
    """(1e20 + 1 - 1e20) under a kernel of ones is 1, where float64 gives 0;
    each output is the exact sum, rounded once to the working precision."""
    x = np.array([[[1e20, 1.0, -1e20, 3.0, 2.0 ** -90]]])
    w = np.ones((1, 1, 3))
    got = at(exact(lambda x, w: F.conv1d(x, w)), mp(x), mp(w), bits=100)
    with mpmath.workprec(4000):
        sums = [mpmath.fsum(mpf(v) for v in x[0, 0, i:i + 3]) for i in range(3)]
    with mpmath.workprec(100):
        assert got == [[[+v for v in sums]]] and got[0][0][0] == 1
    assert F.conv1d(torch.from_numpy(x), torch.from_numpy(w))[0, 0, 0].item() == 0


def test_an_einsum_with_an_ellipsis_sums_exactly():
    a = np.array([[1e25, 1.0, -1e25, 2.0 ** -80]])
    b = np.array([[3.0, 1.0, 3.0, 1.0]])
    fn = lambda a, b: torch.einsum("...i,...i->...", a, b)
    got = at(exact(fn), mp(a), mp(b), bits=100)
    with mpmath.workprec(100):
        assert got == [1 + mpf(2) ** -80] and got[0] != 1
    assert fn(torch.from_numpy(a), torch.from_numpy(b)).item() != 1


def test_a_remainder_is_exact_far_beyond_the_working_precision():
    """1e300 mod 0.1 needs a quotient of ~1000 bits; at 60 bits it is still
    right (float64's remainder of the same doubles is off entirely)."""
    ref = exact(lambda a, b: torch.stack([torch.remainder(a, b), torch.remainder(-a, b), torch.fmod(-a, b)]))
    got = at(ref, mpf(1e300), mpf(0.1), bits=60)
    with mpmath.workprec(4000):
        r = mpmath.fmod(mpf(1e300), mpf(0.1))
        want = [r, mpf(0.1) - r, -r]
    assert all(abs(g - w) <= abs(w) * 2.0 ** -59 for g, w in zip(got, want)), (got, want)


def test_round_is_exact_at_ties_and_beyond_a_double():
    ref = exact(lambda x: torch.round(x))
    assert [at(ref, mpf(v)) for v in (0.5, 1.5, 2.5, -2.5, -0.75)] == [0, 2, 2, -2, -1]
    # (2**70 + 0.5) is no double; its round is 2**70 (tie to even), exactly.
    assert at(exact(lambda x, y: torch.round(x + y) - x), mpf(2.0 ** 70), mpf(0.5), bits=60) == 0
    assert at(exact(lambda x, y: torch.round(x + y) - x), mpf(2.0 ** 70), mpf(0.75), bits=60) == 1


# -- derivatives flow through the ATen level ------------------------------------------------------------------

DERIVATIVES = {
    "conv2d": (lambda x, w: F.conv2d(x, w, padding=1, groups=2), normal(1, 2, 4, 5), normal(4, 1, 3, 3)),
    "conv_transpose1d": (lambda x, w: F.conv_transpose1d(x, w, stride=2), normal(1, 2, 4), normal(2, 3, 3)),
    "pad reflect": (lambda x: F.pad(x, (1, 2, 2, 1), mode="reflect"), normal(1, 2, 4, 5)),
    "grid_sample": (lambda x, g: F.grid_sample(x, g, align_corners=False), normal(1, 2, 4, 5),
                    RNG.uniform(-1, 1, size=(1, 3, 2, 2))),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2, stride=1), normal(1, 2, 4, 5)),
    "sort": (lambda x: torch.sort(x, -1).values, normal(3, 4)),
    "remainder": (lambda a, b: torch.remainder(a, b), normal(5), normal(5)),
    "einsum ...": (lambda a, b: torch.einsum("...ij,...jk->...ik", a, b), normal(2, 3, 4), normal(2, 4, 2)),
    "cross": (lambda a, b: torch.linalg.cross(a, b), normal(4, 3), normal(4, 3)),
    "scatter_add": (lambda a, s: a.scatter_add(1, torch.tensor([[0, 1, 0], [2, 2, 1]]), s), normal(2, 4),
                    normal(2, 3)),
}


@pytest.mark.parametrize("name", list(DERIVATIVES))
def test_forward_mode_through_the_aten_level_matches_autograd(name):
    fn, *inputs = DERIVATIVES[name]
    ts = [torch.from_numpy(x).requires_grad_(True) for x in inputs]
    out = fn(*ts)
    cotangent = normal(*out.shape)
    want = np.concatenate([g.numpy().ravel() for g in torch.autograd.grad(out, ts, torch.from_numpy(cotangent))])
    values, tangents, marked = at(exact(fn).jacobian, *[mp(x) for x in inputs])
    got = np.zeros(want.size)
    for c, tangent in zip(cotangent.ravel(), np.asarray(tangents, dtype=object).ravel()):
        for k, d in tangent.items():
            got[k] += c * float(d)
    assert marked is None
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * np.abs(want).max())


def test_a_tie_in_a_sort_and_a_remainder_at_a_multiple_are_marked():
    assert at(exact(lambda x: torch.sort(x).values).jacobian, [mpf(1), mpf(3), mpf(1)])[2] is not None
    assert at(exact(lambda x: torch.remainder(x, 0.5)).jacobian, [mpf(1.5)])[2] is not None
    assert at(exact(lambda x: torch.round(x)).jacobian, [mpf(2.5)])[2] is not None
    assert at(exact(lambda x: torch.round(x)).jacobian, [mpf(2.25)])[2] is None


def test_a_gradcheck_through_the_aten_level_is_judged_against_the_truth():
    x = torch.from_numpy(normal(1, 2, 4, 4)).requires_grad_(True)
    w = torch.from_numpy(normal(3, 2, 2, 2)).requires_grad_(True)
    assert harness.gradcheck(lambda x, w: F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w), (x, w),
                             strict_truth=True)


# -- the function level first ---------------------------------------------------------------------------------

def test_the_function_level_meaning_wins_over_torch_s_kernel():
    """F.softplus at 30 is log(1 + e^30) = 30 + 9.4e-14, not torch's thresholded 30."""
    got = at(exact(lambda x: F.softplus(x)), mpf(30), bits=200)
    with mpmath.workprec(200):
        want = mpmath.log1p(mpmath.exp(30))
    assert got == want and got - 30 > 9e-14
    assert F.softplus(torch.tensor(30.0, dtype=torch.float64)).item() == 30.0
    # Reached at the ATen level (aten.softplus itself), it keeps the same meaning.
    assert at(exact(lambda x: torch.ops.aten.softplus(x, 1, 20)), mpf(30), bits=200) == want


def test_refused_decompositions_are_never_run(monkeypatch):
    from torch._decomp import decomposition_table
    for packet in exact_aten.REFUSED:
        op = packet.default
        assert op in decomposition_table, f"{op}: torch no longer decomposes it, so the refusal is dead"
        assert exact_aten.decomposition_of(op) is None
    # Without the exact entries, each refused operation stops by name instead of running torch's.
    for packet in (torch.ops.aten.softplus, torch.ops.aten.binary_cross_entropy):
        monkeypatch.delitem(exact_aten.ATEN, packet.default)
    cases = [(lambda x: torch.ops.aten.softplus(x, 1, 20), "threshold"),
             (lambda x: torch.ops.aten.binary_cross_entropy(x, x * 0 + 1), "-100"),
             (lambda x: torch.ops.aten.sinc(x), "pi rounded")]   # torch.sinc itself is exact at the function level
    for fn, why in cases:
        with pytest.raises(ExactUnsupported, match=rf"has a decomposition in torch._decomp that is refused .*{why}"):
            at(exact(fn), mpf(0.5))


def test_the_doc_lists_the_refused_decompositions_of_the_code():
    text = DOCS.read_text()
    section = text[text.index("## Refused decompositions"):]
    section = section[:section.find("\n## ", 3) % len(section)]
    listed = set(re.findall(r"^\| `aten\.(\w+)` \|", section, flags=re.M))
    assert listed == {packet.__name__ for packet in exact_aten.REFUSED}


# -- aliasing, in-place writes, conversions -------------------------------------------------------------------

def test_views_taken_at_the_aten_level_write_through():
    def fn(x):
        y = x.clone()
        y.diagonal().add_(10)                     # aten.diagonal: a view
        y.unfold(1, 2, 2)[0, 0].mul_(-1)          # aten.unfold: a view of windows
        torch.ops.aten.alias(y)[2, 2] = 7         # aten.alias shares the elements
        z = torch.ops.aten.detach(y)
        z.select(0, 2).sub_(1)                    # a select of it writes into y too
        return y
    x = normal(3, 4)
    np.testing.assert_allclose(floats(at(exact(fn), mp(x))), fn(torch.from_numpy(x)).numpy(), rtol=1e-15)


def test_in_place_scatter_and_index_put_accumulate_and_return_self():
    def fn(x):
        y = x.clone()
        out = y.scatter_add_(1, torch.tensor([[0, 0, 0], [1, 1, 3]]), x[:, :3])
        assert out is y
        y.index_put_((torch.tensor([0, 0]), torch.tensor([1, 1])), torch.tensor(0.25, dtype=torch.float64),
                     accumulate=True)
        return y
    x = normal(2, 4)
    np.testing.assert_allclose(floats(at(exact(fn), mp(x))), fn(torch.from_numpy(x)).numpy(), rtol=1e-15)


def test_out_arguments_are_written_as_torch_writes_them():
    def fn(x):
        c, h = torch.empty_like(x), torch.empty_like(x)
        torch.add(x, x, out=c)
        torch.mul(x, 3, out=h[...])                  # a view of h
        m, i = x.new_empty(()), x.new_empty((), dtype=torch.long)
        torch.max(x, 0, out=(m, i))
        return c + h + m + i
    x = np.array([1.5, -2.0, 0.25])
    np.testing.assert_allclose(floats(at(exact(fn), mp(x))), fn(torch.from_numpy(x)).numpy(), rtol=1e-15)
    with pytest.raises(ExactUnsupported, match=r"aten\.add\.out writes into an out= of shape \(0,\)"):
        at(exact(lambda x: torch.add(x, x, out=x.new_empty(0))), mp(x))


def test_exact_values_are_not_written_into_a_torch_tensor():
    """kornia's equalize: a histogram by scatter_add_ into torch.zeros(...)."""
    with pytest.raises(ExactUnsupported, match="cannot be written into a torch tensor"):
        at(exact(lambda x: torch.zeros(2, dtype=torch.float64).scatter_add_(0, torch.tensor([0, 1, 1]), x)),
           mp(normal(3)))


def test_conversions_and_factories_at_the_aten_level_give_stand_ins():
    def fn(x):
        i = torch.ops.aten._to_copy(x * 3, dtype=torch.int64)   # truncation, as torch's
        assert i.dtype == torch.int64
        e = torch.ops.aten.new_zeros(x, [2]) + torch.ops.aten.full_like(x, 2.0)[:2]
        return i + e.sum() + torch.ops.aten.lift_fresh(x) + torch.ops.aten.empty_like(x).zero_()
    x = np.array([1.9, -1.9, 0.4])
    assert floats(at(exact(fn), mp(x))).tolist() == fn(torch.from_numpy(x)).numpy().tolist()


# -- what is not there stops by name -------------------------------------------------------------------------

def test_an_unsupported_aten_operation_is_named_with_the_function_that_led_there():
    with pytest.raises(ExactUnsupported, match=r"no exact torch\.Tensor\.histc \(histc\): at the ATen level, "
                                               r"aten\.histc\.default has no exact rule"):
        at(exact(lambda x: x.histc()), [mpf(1)])
    with pytest.raises(ExactUnsupported, match=r"torch\.special\.bessel_j0 .*prims\.bessel_j0\.default \(through "
                                               r"aten\.special_bessel_j0\.default\)"):
        at(exact(lambda x: torch.special.bessel_j0(x)), mpf(1))
    with pytest.raises(ExactUnsupported, match=r"aten\.rand_like\.default is random"):
        at(exact(lambda x: x + torch.rand_like(x)), mpf(1))


def test_a_decomposition_that_reaches_its_own_operation_stops_by_name(monkeypatch):
    histc = torch.ops.aten.histc.default
    monkeypatch.setattr(exact_aten, "decomposition_of", lambda func: (lambda *a, **k: histc(*a, **k)))
    with pytest.raises(ExactUnsupported, match=r"aten\.histc\.default .*is reached again by its own decomposition"):
        at(exact(lambda x: x.histc()), [mpf(1)])


def test_a_product_of_mostly_exact_zeros_skips_them_and_keeps_the_same_sums():
    """kornia's mutual information: a joint histogram as an einsum of kernel
    values, most of them exact zeros (the sparse path of exact's matmul)."""
    a = np.where(RNG.uniform(size=(2, 40, 30)) < 0.8, 0.0, normal(2, 40, 30))
    b = np.where(RNG.uniform(size=(2, 40, 20)) < 0.8, 0.0, normal(2, 40, 20))
    a[0, 0, 0], b[0, 0, :] = 1e20, 1.0   # an exact sum where float64 rounds
    a[0, 1, 0] = -1e20
    fn = lambda a, b: torch.einsum("...in,...im->...nm", a, b)
    dense = exact(lambda a, b: (a[..., None] * b[..., None, :]).sum(-3))   # every product, no matmul
    got, want = at(exact(fn), mp(a), mp(b)), at(dense, mp(a), mp(b))
    assert got == want
    assert_matches_torch(fn, a, b, rtol=1e-13)
    a[0, 5, 0], b[0, 5, 3] = 0.0, np.inf   # 0 * inf is NaN: then no product is skipped
    got = np.asarray(at(exact(fn), mp(a), mp(b)), dtype=object)
    assert mpmath.isnan(got[0, 0, 3]) and np.isnan(fn(torch.from_numpy(a), torch.from_numpy(b))[0, 0, 3].item())
