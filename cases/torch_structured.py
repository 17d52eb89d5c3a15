"""PyTorch's differentiable structured ops (reductions, normalizations, losses,
attention, scans), certified as they ship: the accuracy table's part 2.

One case per op and calling convention, on the structured default grid of the
shape it names; autograd's own backward is the claim. The references are the
mathematical functions, evaluated exactly by ``harness.exact``: torch's own op
where ``exact`` implements it, else the textbook formula written in ops it
does (``softmin`` as ``softmax(-x)``, ``rms_norm`` as ``x / sqrt(mean(x**2) +
eps)``), with torch's documented constants (``eps``, margins) as part of the
function. The expectations are the measured verdicts (torch 2.13 on CPU), so a
change in torch shows up as a failing test. Deselected from a plain ``pytest
cases/``, as part 1 is: ``pytest cases/torch_structured.py --torch-ops``. The
table is docs/torch_structured.md (``python -m harness.tables.accuracy_table --module
cases.torch_structured --out docs/torch_structured.md``), with ``FINDINGS``
and ``HARNESS_NOTES`` below.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import harness
from harness import certified, convicted, domains
from harness.tables.findings import Finding
from harness.tables.compiled_findings import HALF_IN_DECOMPOSITION, HALF_IN_FLOAT, CompiledFinding
from harness.judging.expectations import with_compiled

exact = harness.exact

#: The page's title (harness.tables.accuracy_table).
TITLE = "The accuracy table of PyTorch's autograd, part 2: reductions, normalizations, losses and attention"

#: Deselected unless the run asks for the sweeps with --torch-ops (harness/pytest/plugin.py).
pytestmark = pytest.mark.torch_ops

REAL = domains.real()
FINITE = domains.interval(-math.inf, math.inf)
POSITIVE = domains.positive()
UNIT = domains.interval(0, 1)
CLASSES = domains.choice(0, 1, 2, 3)
SIGNS = domains.choice(-1, 1)
#: Ops with no float16 or bfloat16 kernel (or backward) on CPU.
NO_HALF = (torch.float64, torch.float32)


def op(name: str, forward, reference=None, shape=(8,), domain=REAL, expect=certified(), **options) -> harness.Case:
    """``torch.<name>`` on the default grid of ``shape``; the reference is
    ``forward`` evaluated exactly unless given."""
    return harness.Case(f"torch.{name}", forward, reference or exact(forward), shape=shape, domain=domain,
                        expect=expect, **options)


def longer_than_one(*xs) -> bool:
    """Rows of more than one entry (an unbiased variance divides by n - 1)."""
    return xs[0].shape[-1] > 1


# -- textbook formulas for the ops harness.exact has no entry for ---------------------------------

#: rms_norm's eps, given: its default is the input dtype's epsilon, which a reference cannot see.
RMS_EPS = 1e-6


def _rms_norm(x):
    return x / torch.sqrt(torch.mean(x * x, -1, keepdim=True) + RMS_EPS)


def _group_norm(x):
    """Two groups of the 4 channels of x (2, 4, L): a layer norm over each group's entries."""
    groups = x.reshape(x.shape[0], 2, -1)
    return F.layer_norm(groups, groups.shape[-1:]).reshape(x.shape)


def _batch_norm(x):
    """Training mode: each channel of x (4, 3) normalized by its batch's mean and biased variance."""
    mean = torch.mean(x, 0, keepdim=True)
    var = torch.mean((x - mean) * (x - mean), 0, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5)


def _instance_norm(x):
    """x (2, 2, L): each sample's channel normalized over its L positions."""
    return F.layer_norm(x, x.shape[-1:])


def _kl_div(input, target):
    return torch.mean(torch.xlogy(target, target) - target * input)


def _kl_div_log_target(input, target):
    return torch.mean(torch.exp(target) * (target - input))


#: pos_weight is a constant of the loss (torch does not differentiate along it).
POS_WEIGHT = torch.tensor([0.5, 1.0, 3.0, 100.0])


def _bce_pos_weight(x, y):
    """-(w y log sigmoid(x) + (1 - y) log sigmoid(-x)), the mean over entries."""
    return torch.mean(POS_WEIGHT * y * F.softplus(-x) + (1 - y) * F.softplus(x))


def _poisson_nll(input, target):
    return torch.mean(torch.exp(input) - target * input)


def _poisson_nll_linear(input, target):
    return torch.mean(input - target * torch.log(input + 1e-8))


def _gaussian_nll(input, target, var):
    v = torch.clamp(var, min=1e-6)
    return torch.mean(0.5 * (torch.log(v) + (input - target) ** 2 / v))


def _huber(input, target):
    d = torch.abs(input - target)
    return torch.mean(torch.where(d < 1, 0.5 * d * d, d - 0.5))


def _margin_ranking(x1, x2, y):
    return torch.mean(torch.clamp(-y * (x1 - x2), min=0))


def _pairwise(x1, x2, eps=1e-6):
    return torch.linalg.vector_norm(x1 - x2 + eps, 2, -1)


def _triplet(anchor, positive, negative):
    return torch.mean(torch.clamp(_pairwise(anchor, positive) - _pairwise(anchor, negative) + 1.0, min=0))


def _cosine(x1, x2, eps=1e-8):
    # torch 2.13 (ATen's cosine_similarity): x1 . x2 / sqrt(clamp(|x1|**2 |x2|**2, eps**2))
    dot = torch.sum(x1 * x2, -1)
    return dot / torch.sqrt(torch.clamp(torch.sum(x1 * x1, -1) * torch.sum(x2 * x2, -1), min=eps * eps))


def _cosine_embedding(x1, x2, y):
    # EPSILON = 1e-12 added to each squared norm (ATen's cosine_embedding_loss)
    dot = torch.sum(x1 * x2, -1)
    cos = dot / torch.sqrt((torch.sum(x1 * x1, -1) + 1e-12) * (torch.sum(x2 * x2, -1) + 1e-12))
    return torch.mean(torch.where(y > 0, 1 - cos, torch.clamp(cos, min=0)))


def _cdist(x1, x2):
    return torch.linalg.vector_norm(x1[:, None, :] - x2[None, :, :], 2, -1)


def _pdist(x):
    n = x.shape[0]
    return torch.stack([torch.linalg.vector_norm(x[i] - x[j], 2, -1) for i in range(n) for j in range(i + 1, n)])


def _attention(q, k, v, mask=None, causal=False):
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if causal:
        keep = torch.ones(scores.shape[-2], scores.shape[-1], dtype=torch.bool).tril()
        scores = scores.masked_fill(~keep, -math.inf)
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    return torch.matmul(torch.softmax(scores, -1), v)


#: A key mask that hides the last key from every query (a padded position).
PADDING = torch.tensor([[True, True, False]] * 2)


def _sdpa(**options):
    def forward(q, k, v):
        with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, **options)
    return forward


def _logcumsumexp(x):
    return torch.stack([torch.logsumexp(x[..., :i + 1], -1) for i in range(x.shape[-1])], -1)


def _cumprod(x):
    return torch.stack([torch.prod(x[..., :i + 1], -1) for i in range(x.shape[-1])], -1)


#: A small CTC instance: 3 frames of 3 classes (blank 0), the target "1".
CTC_TARGET = torch.tensor([1])


def _ctc(log_probs):
    return F.ctc_loss(log_probs, CTC_TARGET, torch.tensor([log_probs.shape[0]]), torch.tensor([1]), reduction="sum")


def _ctc_forward_algorithm(lp):
    """-log sum over alignments, by the forward recursion over the extended labels
    (blank, 1, blank) (Graves et al., "Connectionist Temporal Classification", 2006)."""
    ext = [0, 1, 0]
    never = lp[0, 0] * 0 - math.inf
    alpha = [lp[0, 0], lp[0, 1], never]
    for t in range(1, lp.shape[0]):
        alpha = [torch.logsumexp(torch.stack([alpha[s]] + ([alpha[s - 1]] if s else [])), 0) + lp[t, label]
                 for s, label in enumerate(ext)]
    return -torch.logsumexp(torch.stack([alpha[-1], alpha[-2]]), 0)


def three_classes(x) -> bool:
    """CTC's classes are the labels: fewer than 3 would index past them."""
    return x.shape[-1] == 3


QKV = ((2, 4), (3, 4), (3, 4))
#: Finite queries, keys and values: at q = inf beside k = -inf a score's limit
#: depends on the path (the truth engine reads no limit there), and masks are
#: how attention meets -inf (attn_mask, is_causal), which the grid has.
ATTENTION = (FINITE, FINITE, FINITE)

CASES = [
    # -- the softmax family ------------------------------------------------------------------
    op("nn.functional.softmax", lambda x: F.softmax(x, -1),
       expect={"float16": convicted("lost-digits", "non-finite", "underflow", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    op("nn.functional.log_softmax", lambda x: F.log_softmax(x, -1),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow"), "*": convicted("lost-digits", "non-finite", "silent-zero")}),
    op("nn.functional.softmin", lambda x: F.softmin(x, -1), exact(lambda x: F.softmax(-x, -1)),
       expect={"float16": convicted("lost-digits", "non-finite", "underflow", "wrong-sign"), "bfloat16": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero")}),
    op("logsumexp", lambda x: torch.logsumexp(x, -1),
       expect={"float64": convicted("lost-digits", "non-finite"), "*": convicted("non-finite")}),
    # -- losses ------------------------------------------------------------------------------
    op("nn.functional.cross_entropy", lambda x, t: F.cross_entropy(x, t.long()), shape=((2, 4), (2,)),
       domain=(REAL, CLASSES),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow"), "bfloat16": convicted("non-finite", "silent-zero"), "*": convicted("lost-digits", "non-finite", "silent-zero")}),
    op("nn.functional.cross_entropy(probabilities)", lambda x, p: F.cross_entropy(x, p), shape=((2, 4), (2, 4)),
       domain=(REAL, domains.simplex()),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow"), "*": convicted("lost-digits", "non-finite", "silent-zero")}),
    op("nn.functional.cross_entropy(label_smoothing=0.1)",
       lambda x, t: F.cross_entropy(x, t.long(), label_smoothing=0.1), shape=((2, 4), (2,)), domain=(REAL, CLASSES),
       expect={"bfloat16": convicted("non-finite", "wrong-sign"), "*": convicted("non-finite")}),
    op("nn.functional.nll_loss", lambda x, t: F.nll_loss(x, t.long()), shape=((2, 4), (2,)), domain=(REAL, CLASSES),
       expect=convicted("non-finite")),
    op("nn.functional.binary_cross_entropy", lambda p, y: F.binary_cross_entropy(p, y), shape=((4,), (4,)),
       domain=(UNIT, UNIT),
       expect={"float16": convicted("non-finite"), "*": convicted("lost-digits")}),
    op("nn.functional.binary_cross_entropy_with_logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y),
       shape=((4,), (4,)), domain=(REAL, UNIT),
       expect={"float16": convicted("lost-digits", "non-finite"), "*": convicted("lost-digits", "non-finite", "silent-zero")}),
    op("nn.functional.binary_cross_entropy_with_logits(pos_weight)",
       lambda x, y: F.binary_cross_entropy_with_logits(x, y, pos_weight=POS_WEIGHT), exact(_bce_pos_weight),
       shape=((4,), (4,)), domain=(REAL, UNIT),
       expect={"float16": convicted("lost-digits", "non-finite", "underflow"), "*": convicted("lost-digits", "non-finite", "silent-zero")}),
    op("nn.functional.kl_div", lambda x, t: F.kl_div(x, t, reduction="batchmean"), exact(_kl_div),
       shape=((4,), (4,)), domain=(REAL, domains.simplex()),
       expect={"bfloat16": convicted("inconsistent", "non-finite"), "*": convicted("inconsistent", "lost-digits", "non-finite")}),
    op("nn.functional.kl_div(log_target=True)", lambda x, t: F.kl_div(x, t, reduction="batchmean", log_target=True),
       exact(_kl_div_log_target), shape=((4,), (4,)),
       expect={"float16": convicted("non-finite"), "*": convicted("non-finite", "silent-zero")}),
    op("nn.functional.poisson_nll_loss", lambda x, t: F.poisson_nll_loss(x, t), exact(_poisson_nll),
       shape=((4,), (4,)), domain=(REAL, POSITIVE),
       expect=convicted("non-finite")),
    op("nn.functional.poisson_nll_loss(log_input=False)", lambda x, t: F.poisson_nll_loss(x, t, log_input=False),
       exact(_poisson_nll_linear), shape=((4,), (4,)), domain=(POSITIVE, POSITIVE),
       expect={"float16": convicted("lost-digits", "non-finite", "wrong-sign"), "*": convicted("non-finite")}),
    op("nn.functional.gaussian_nll_loss", lambda x, t, v: F.gaussian_nll_loss(x, t, v), exact(_gaussian_nll),
       shape=((4,), (4,), (4,)), domain=(REAL, REAL, POSITIVE),
       expect={"float16": convicted("non-finite"), "*": convicted("lost-digits", "non-finite")}),
    op("nn.functional.huber_loss", lambda x, t: F.huber_loss(x, t), exact(_huber), shape=((4,), (4,)),
       expect=convicted("non-finite")),
    op("nn.functional.smooth_l1_loss", lambda x, t: F.smooth_l1_loss(x, t), exact(_huber), shape=((4,), (4,)),
       expect=convicted("non-finite")),
    op("nn.functional.mse_loss", lambda x, t: F.mse_loss(x, t), shape=((4,), (4,)),
       expect=convicted("non-finite")),
    op("nn.functional.l1_loss", lambda x, t: F.l1_loss(x, t), shape=((4,), (4,)),
       expect=convicted("non-finite")),
    op("nn.functional.margin_ranking_loss", lambda a, b, y: F.margin_ranking_loss(a, b, y), exact(_margin_ranking),
       shape=((4,), (4,), (4,)), domain=(REAL, REAL, SIGNS),
       expect=convicted("non-finite")),
    op("nn.functional.triplet_margin_loss", lambda a, p, n: F.triplet_margin_loss(a, p, n), exact(_triplet),
       shape=((2, 4), (2, 4), (2, 4)),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    op("nn.functional.cosine_embedding_loss", lambda a, b, y: F.cosine_embedding_loss(a, b, y),
       exact(_cosine_embedding), shape=((2, 4), (2, 4), (2,)), domain=(REAL, REAL, SIGNS),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    op("nn.functional.ctc_loss", _ctc, exact(_ctc_forward_algorithm), shape=(3, 3), domain=FINITE,
       relation=three_classes, dtypes=NO_HALF,
       expect=convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")),
    # -- normalizations ----------------------------------------------------------------------
    op("nn.functional.layer_norm", lambda x: F.layer_norm(x, x.shape[-1:]),
       expect={"float16": convicted("lost-digits", "non-finite", "underflow", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    op("nn.functional.rms_norm", lambda x: F.rms_norm(x, x.shape[-1:], eps=RMS_EPS), exact(_rms_norm),
       expect={"float16": convicted("non-finite"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    op("nn.functional.group_norm", lambda x: F.group_norm(x, 2), exact(_group_norm), shape=(2, 4, 2),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    op("nn.functional.batch_norm", lambda x: F.batch_norm(x, None, None, training=True), exact(_batch_norm),
       shape=(4, 3),
       expect={"float16": convicted("lost-digits", "non-finite", "underflow", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    # Training mode needs more than one position per channel.
    op("nn.functional.instance_norm", lambda x: F.instance_norm(x), exact(_instance_norm), shape=(2, 2, 4),
       relation=longer_than_one,
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    op("nn.functional.normalize", lambda x: F.normalize(x, dim=-1),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow", "wrong-sign"), "float32": convicted("lost-digits", "non-finite", "silent-zero"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    # -- norms, distances, moments ---------------------------------------------------------------
    op("linalg.vector_norm", lambda x: torch.linalg.vector_norm(x, 2, -1),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow"), "*": convicted("lost-digits", "non-finite", "silent-zero")}),
    op("linalg.vector_norm(ord=1)", lambda x: torch.linalg.vector_norm(x, 1, -1)),
    op("linalg.vector_norm(ord=inf)", lambda x: torch.linalg.vector_norm(x, math.inf, -1)),
    op("linalg.vector_norm(ord=0.5)", lambda x: torch.linalg.vector_norm(x, 0.5, -1),
       expect={"float16": convicted("non-finite"), "bfloat16": convicted("non-finite"), "*": convicted("lost-digits", "non-finite")}),
    op("var", lambda x: torch.var(x, -1), relation=longer_than_one,
       expect={"float32": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"), "float16": convicted("non-finite"), "bfloat16": convicted("non-finite", "silent-zero"), "*": convicted("non-finite", "silent-zero", "wrong-sign")}),
    op("std", lambda x: torch.std(x, -1), relation=longer_than_one,
       expect=convicted("lost-digits", "non-finite", "silent-zero")),
    op("var_mean", lambda x: torch.stack(torch.var_mean(x, -1), -1),
       exact(lambda x: torch.stack([torch.var(x, -1), torch.mean(x, -1)], -1)), relation=longer_than_one,
       expect={"float64": convicted("non-finite", "silent-zero", "wrong-sign"), "float16": convicted("non-finite"), "*": convicted("non-finite", "wrong-sign")}),
    op("cdist", lambda a, b: torch.cdist(a, b), exact(_cdist), shape=((2, 4), (3, 4)), dtypes=NO_HALF,
       expect=convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")),
    op("nn.functional.pdist", lambda x: F.pdist(x), exact(_pdist), shape=(3, 4), dtypes=NO_HALF,
       expect=convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")),
    op("nn.functional.pairwise_distance", lambda a, b: F.pairwise_distance(a, b), exact(_pairwise),
       shape=((4,), (4,)),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow"), "*": convicted("non-finite", "silent-zero")}),
    op("nn.functional.cosine_similarity", lambda a, b: F.cosine_similarity(a, b, -1), exact(_cosine),
       shape=((4,), (4,)),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow", "wrong-sign"), "*": convicted("finite-vs-inf", "lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    op("dist", lambda a, b: torch.dist(a, b), exact(lambda a, b: torch.linalg.vector_norm(a - b, 2)),
       shape=((4,), (4,)),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow"), "*": convicted("non-finite", "silent-zero")}),
    # -- attention ---------------------------------------------------------------------------
    op("nn.functional.scaled_dot_product_attention", _sdpa(), exact(_attention), shape=QKV, domain=ATTENTION,
       expect={"float16": convicted("lost-digits", "non-finite", "underflow", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    op("nn.functional.scaled_dot_product_attention(attn_mask)", _sdpa(attn_mask=PADDING),
       exact(lambda q, k, v: _attention(q, k, v, mask=PADDING)), shape=QKV, domain=ATTENTION,
       expect={"float16": convicted("lost-digits", "underflow", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    op("nn.functional.scaled_dot_product_attention(is_causal=True)", _sdpa(is_causal=True),
       exact(lambda q, k, v: _attention(q, k, v, causal=True)), shape=((3, 4), (3, 4), (3, 4)),
       domain=ATTENTION,
       expect={"float16": convicted("lost-digits", "silent-zero", "underflow", "wrong-sign"), "*": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")}),
    # -- scans and products ------------------------------------------------------------------
    op("logcumsumexp", lambda x: torch.logcumsumexp(x, -1), exact(_logcumsumexp),
       expect=convicted("lost-digits", "non-finite")),
    # NaN where +inf meets -inf in a prefix: the limit depends on the path there
    # (indeterminate, listed, not failed).
    op("cumsum", lambda x: torch.cumsum(x, -1),
       expect={"float64": convicted("silent-zero", "non-finite"), "*": certified()}),
    op("cumprod", lambda x: torch.cumprod(x, -1), exact(_cumprod),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow"), "*": convicted("lost-digits", "non-finite", "silent-zero")}),
    op("prod", lambda x: torch.prod(x, -1),
       expect={"float16": convicted("lost-digits", "non-finite", "silent-zero", "underflow"),
               "*": convicted("lost-digits", "non-finite", "silent-zero")}),
]


#: The softmax family's defects at the two edges every reduction meets: ±inf entries
#: (``exp(x - max)`` is ``exp(inf - inf)``) and rows all -inf (max is -inf).
_INF = ("At a +inf entry `x - max(x)` is `inf - inf`, NaN, where the limit is one-hot; a row all -inf "
        "(max -inf) is NaN where the limit along the diagonal is uniform.")

FINDINGS = {
    "torch.nn.functional.softmax": Finding(
        "`_softmax_backward_data` is `p * (g - sum(g * p))`: for the dominant entry (p ~ 1) `g_i - <g, p>` "
        "cancels, the true `sum_{j != i} p_j (g_i - g_j)` being of the size of the others' weights; its "
        "gradient is 0 from a gap of {float64 gradient silent-zero lo \"dominant first\"} (float64) and "
        "{float32 gradient silent-zero lo \"dominant first\"} (float32) and loses digits from a gap of a few units. "
        + _INF,
        fix="the dominant entry's `g_i - <g, p>` as `sum_{j != i} p_j (g_i - g_j)`."),
    "torch.nn.functional.log_softmax": Finding(
        "the forward `x - max - log(sum(exp(x - max)))` is `-log(1 + tiny)`, 0 for the dominant entry where "
        "the truth is `-sum_{j != i} exp(x_j - x_i)`; the backward `g - exp(out) * sum(g)` cancels for the same "
        "entry. " + _INF,
        fix="`-log1p(sum of the others' exp(x_j - max))` for the dominant entry (the README's SoftmaxLoss)."),
    "torch.nn.functional.softmin": Finding("softmin is `softmax(-x)`: softmax's backward cancellation for the "
                                           "smallest entry. " + _INF),
    "torch.logsumexp": Finding(
        "`logsumexp_backward` is `g * exp(x - result)`: `result` is rounded to an ULP of |x|, so beyond 2**53 "
        "(float64) `x - result` is off by units and the weights of a tie of 8 equal entries read 1 instead of "
        "1/8. At ±inf entries `x - result` is `inf - inf`.",
        fix="the weights as `exp(x - max) / sum(exp(x - max))`, not through `result`."),
    "torch.nn.functional.cross_entropy": Finding(
        "log_softmax then nll: the target's `p_t - 1` cancels where its logit dominates (gradient 0 past a gap "
        "of ~38 in float64, loss 0 where it is ~1e-17), as log_softmax. " + _INF,
        fix="the README's SoftmaxLoss: `(max - x_t) + log1p(sum of the others' exp(x_j - max))`."),
    "torch.nn.functional.cross_entropy(probabilities)": Finding(
        "as cross_entropy with indices: the dominant class's log-probability is `-log(1 + tiny)`, so the "
        "gradient along the target probabilities (`-log_softmax`) is 0 where it is ~1e-17. " + _INF),
    "torch.nn.functional.cross_entropy(label_smoothing=0.1)": Finding(
        "finite defects hidden by the smoothing term (of order 0.1 / C); NaN at ±inf logits and rows all -inf "
        "(the log_softmax underneath), and inf where the mean of two losses of ~1e308 overflows.", edge=True),
    "torch.nn.functional.nll_loss": Finding("the mean `sum(-x[t]) / N` overflows where each term is ~1e308.",
                                            fix="sum `-x[t] / N`.", edge=True),
    "torch.nn.functional.ctc_loss": Finding(
        "`ctc_loss_backward` returns `exp(lp) - exp(log(sum alpha beta) + nll - lp)`: the true gradient plus "
        "`exp(log_probs)` (Graves' gradient with respect to the logits under a softmax), so the gradient with "
        "respect to log_probs is of the wrong sign almost everywhere, right only once log_softmax's backward "
        "removes every per-frame term proportional to the probabilities; inf where `exp` of the scores "
        "overflows (gaps past 89 in float32, 710 in float64).",
        fix="differentiate through `log_softmax(logits)` (what training does), or subtract `exp(log_probs)`."),
    "torch.nn.functional.binary_cross_entropy": Finding(
        "the forward clamps `log(p)` and `log(1 - p)` at -100 (documented), and "
        "`binary_cross_entropy_backward` divides by `max(p (1 - p), 1e-12)` (ATen's EPSILON): the value is "
        "wrong for p < 3.7e-44, the gradient for p < 1e-12 and p > 1 - 1e-12.",
        "torch.nn.functional.binary_cross_entropy_with_logits"),
    "torch.nn.functional.binary_cross_entropy_with_logits": Finding(
        "ATen's `(1 - y) x + m + log(exp(-m) + exp(-x - m))`, `m = max(-x, 0)`: for x << 0, `(1 - y) x` and "
        "`m = -x` cancel, losing the loss `y |x|` where y is below an ULP (value 0 where it is 4e217 in "
        "float64); NaN at ±inf logits (`inf - inf`).",
        fix="`y softplus(-x) + (1 - y) softplus(x)` with softplus's `max(x, 0) + log1p(exp(-|x|))`."),
    "torch.nn.functional.binary_cross_entropy_with_logits(pos_weight)": Finding(
        "as without pos_weight (`(1 - y) x` against `m`), and the target's gradient `-w x + x - ...` loses the "
        "terms where `|x|` is tiny beside the pos_weight's log term (0 for |x| < 1e-75 in float64).",
        fix="as without pos_weight."),
    "torch.nn.functional.gaussian_nll_loss": Finding(
        "`var.clamp_(min=eps)` runs under `no_grad`: below eps = 1e-6 the forward is flat in var (its derivative "
        "0) but the gradient is the one at eps, `(1 / eps - (x - t)**2 / eps**2) / 2n` (-1e12 against 0, a "
        "straight-through estimate by design); `(x - t)**2` overflows for |x - t| > 1.3e154.",
        fix="`torch.clamp(var, min=eps)` with autograd, if the true gradient is wanted."),
    "torch.nn.functional.kl_div": Finding(
        "only at one-hot targets (entries 0, where d/dt of `xlogy(t, t)` is `log t + 1 = -inf`; torch's NaN "
        "and the forward's differences disagree there), subnormal target entries (d/dt loses 43 bits in "
        "float64) and ±inf inputs; the kernel's part in the subnormal case is not analysed further.", edge=True),
    "torch.nn.functional.kl_div(log_target=True)": Finding(
        "`exp(t) * (t - x)`: NaN at ±inf entries (`exp(-inf) * inf`), and `exp(t)` or `t - x` overflow near the "
        "top of the format (d/dx -inf where the mean is -7.4e307).", edge=True),
    "torch.nn.functional.poisson_nll_loss": Finding(
        "`exp(x) - t x`: `exp(x)` overflows past 709.78 (float64) before the mean divides it by n, and "
        "`inf - inf` at ±inf entries.", fix="the mean of `exp(x - log n) - t x / n`.", edge=True),
    "torch.nn.functional.poisson_nll_loss(log_input=False)": Finding(
        "`x - t log(x + eps)`: `t log(x + eps)` overflows for the largest targets (float16: -inf past 65504 "
        "where the loss is -2.6e4), `inf - inf` at ±inf entries, and float16 loses 3 to 5 bits at subnormal x "
        "where `log(x + 1e-8)` is rounded in half precision.", edge=True),
    "torch.nn.functional.huber_loss": Finding("`x - t` overflows where both are near ±max with opposite signs "
                                              "(inf where the mean loss is 1e308).", edge=True),
    "torch.nn.functional.smooth_l1_loss": Finding("as huber_loss: `x - t` overflows.", edge=True),
    "torch.nn.functional.l1_loss": Finding("as huber_loss: `|x - t|` overflows before the mean.", edge=True),
    "torch.nn.functional.mse_loss": Finding("`(x - t)**2` overflows above 1.3e154 (float64) before the mean, and "
                                            "at x = t = +inf the harness reads the diagonal limit (notes).",
                                            edge=True),
    "torch.nn.functional.margin_ranking_loss": Finding("`-y (x1 - x2)` overflows where both are near ±max.",
                                                       edge=True),
    "torch.linalg.vector_norm(ord=0.5)": Finding(
        "the gradient `sign(x) |x|**(p - 1) norm**(1 - p)`: `norm**0.5` overflows with entries near max "
        "(gradient ±inf against ±8), and `inf / inf` at ±inf entries.", edge=True),
    "torch.cdist": Finding("as vector_norm: `|a_i - b_j|` unscaled, inf from an entry of "
                           "{float64 value non-finite lo \"a: dominant first\"} (float64), where the squares "
                           "overflow, and digits lost where they underflow; NaN gradients at ±inf entries "
                           "(`inf / inf`).",
                           fix="scale each difference by its max |entry| before the norm."),
    "torch.nn.functional.pdist": Finding("as cdist, over the pairs of rows."),
    "torch.nn.functional.pairwise_distance": Finding("as cdist: `|x1 - x2 + eps|` unscaled."),
    "torch.dist": Finding("as cdist: `|x1 - x2|` unscaled."),
    "torch.nn.functional.triplet_margin_loss": Finding(
        "two pairwise distances, unscaled (inf above 1.3e154, so `inf - inf` NaN losses where both distances "
        "overflow), and their gradients `u / |u|` lose the small entries of a difference dominated by one "
        "entry (d/da 0 where the truth is 4e-17)."),
    "torch.nn.functional.cosine_embedding_loss": Finding(
        "ATen's `x1 . x2 / sqrt((|x1|**2 + eps) (|x2|**2 + eps))`: squared norms overflow (NaN gradients for "
        "entries past 1.3e154) and underflow, and the gradient of the cosine loses the small entries beside a "
        "dominant one (d/db 0 where the truth is 1.7e-51).",
        fix="normalize each vector by its max |entry| first."),
    "torch.nn.functional.scaled_dot_product_attention(attn_mask)": Finding(
        "as without the mask, on the unmasked keys; the value is of the wrong sign where a key's score "
        "overflows float32 (`q k^T` past 3.4e38)."),
    "torch.nn.functional.scaled_dot_product_attention(is_causal=True)": Finding(
        "as without the mask, per causal row."),
    "torch.linalg.vector_norm": Finding(
        "the CPU kernel sums squares unscaled: the 2-norm is inf from a largest entry of "
        "{float64 value non-finite lo \"dominant first\"} (float64; {float32 value non-finite lo \"dominant first\"} "
        "in float32), where the squares overflow, and where they underflow through the subnormals the norm loses "
        "its digits and the gradient `x / norm` is 0, for constant rows up to "
        "{float64 gradient silent-zero hi \"constant row\"} (float64; "
        "{float32 gradient silent-zero hi \"constant row\"} in float32); NaN at ±inf entries (`inf / inf`).", fix="scale by max |x| (LAPACK's `dnrm2`), as `torch.linalg.vector_norm(x / m) * m`."),
    "torch.var": Finding(
        "the gradient `2 (x - mean) / (n - 1)` takes `x - mean` with `mean` rounded: at a large offset with a "
        "spread of a few ULPs it is 0 or of the wrong sign; the value overflows where `(x - mean)**2` does "
        "(entries near 1e308) although the variance is 0."),
    "torch.std": Finding("as var, and `grad / (2 std)` with std = 0 gives NaN on constant rows."),
    "torch.var_mean": Finding("as var (the mean's gradient is right)."),
    "torch.nn.functional.layer_norm": Finding(
        "`rstd = 1 / sqrt(var + eps)` from a CPU variance that overflows for entries above ~1e154 (NaN, and "
        "value 0 where the row is normalized to ±1.7); at a large offset the centred entries are ULPs of the "
        "offset, and the gradient's `(g - mean(g) - y mean(g y)) rstd` loses them."),
    "torch.nn.functional.rms_norm": Finding("`x * rsqrt(mean(x**2) + eps)`: `x**2` overflows above 1.3e154 "
                                            "(float64), value 0 and gradient NaN there.",
                                            fix="scale by max |x| before squaring."),
    "torch.nn.functional.batch_norm": Finding("as layer_norm, over the batch of each channel."),
    "torch.nn.functional.group_norm": Finding("as layer_norm, over each group."),
    "torch.nn.functional.instance_norm": Finding("as layer_norm, over each channel's positions."),
    "torch.nn.functional.normalize": Finding("`x / max(norm(x), eps)` with the unscaled 2-norm: inf or 0 norms "
                                             "(see vector_norm) give 0 or NaN outputs and gradients.",
                                             fix="scale by max |x| before the norm."),
    "torch.nn.functional.cosine_similarity": Finding(
        "ATen's `sum(x1 x2) / sqrt(clamp(|x1|**2 |x2|**2, eps**2))`: the product of squared norms overflows "
        "(output 0, gradient 0) for norms whose product passes 1e308, though the cosine is of order 1.",
        fix="normalize each vector first: `sum((x1 / |x1|) (x2 / |x2|))`."),
    "torch.nn.functional.scaled_dot_product_attention": Finding(
        "the math backend is `softmax(q k^T / sqrt(E)) v`: softmax's backward cancellation for a dominant "
        "score, and `q k^T` overflows for entries near 1e154 (float64) where the softmax of the scaled scores "
        "is still defined."),
    "torch.logcumsumexp": Finding(
        "the backward recomputes the weights `exp(x_j - out_i)` from the rounded outputs: beyond 2**53 "
        "(float64) an ULP of `out_i` is more than 1 and the weights are wrong (gradient 1 against 10.9).",
        fix="weights from `x_j - max` within each prefix, as logsumexp's."),
    "torch.cumsum": Finding(
        "a recursive sum: where the prefixes cancel (mixed signs of ~1e307 summing to 1e291), the last is 0; "
        "within the classic bound `(n - 1) eps sum |partial sums|` but not the harness's per-point budget (a "
        "harness note).", edge=True),
    "torch.prod": Finding("the gradient `prod / x_i` (derivatives.yaml's `prod_backward` where no entry is 0) "
                          "overflows or underflows with the product although the product of the others does not."),
    "torch.cumprod": Finding("as prod: `cumprod_backward` divides the outputs by the entries."),
}

# -- compiled findings: what torch.compile does otherwise ----------------------------------------

_WELFORD = CompiledFinding(
    "Inductor lowers the variance (of var, std, var_mean, and the statistics of layer_norm, group_norm, "
    "batch_norm and instance_norm) to its own vectorized Welford reduction (`welford_combine` over the "
    "vector lanes, then across them), where eager's kernels reduce otherwise: at entries of large magnitude "
    "the compiled statistics come out NaN where eager's are right or inf as the truth (var float64 at "
    "±1.34e154; float32 rows near 8.5e37); which step of the combination overflows is not established here. "
    "The 16-bit entries, computed in float32, lose the wrong signs of eager's half kernels.", "welford_combine(",
    "inductor")
#: Where the normalization's decomposition, run op by op, already gives the compiled number.
_NORM_DECOMPOSED = CompiledFinding(
    "The normalization's decomposition (`native_layer_norm`, `native_group_norm`, `_native_batch_norm_legit` "
    "in torch/_decomp: the statistics by `var_mean(x, correction=0)`, then `rsqrt(var + eps)`, in float32 for "
    "16-bit inputs), run op by op with eager's kernels, already gives the compiled number at the worst entry, "
    "where eager's fused kernel gives NaN (float32 and bfloat16 rows near ±8.5e37) or 0 (group_norm float64): "
    "a gain of the decomposition, which Inductor's Welford reduction keeps.", "welford_combine(", "decomposition")
_HALF = CompiledFinding(HALF_IN_FLOAT, "at::vec::convert<float", "inductor")
_HALF_DECOMPOSED = CompiledFinding(HALF_IN_DECOMPOSITION, None, "decomposition")
#: The tree in which Inductor's vectorized reductions add their lanes (a line of the generated code).
_LANE_SUM = "{ return x + y; }, tmp_acc0_vec)"
_SOFTMAX = CompiledFinding(
    "The backward (`_softmax_backward_data` in torch/_decomp: `g*y - y * sum(g*y)`) cancels where g_i is close to "
    "`sum(g*y)` (1.5 against 1.4955 at the float32 worst entry). Compiled, Inductor contracts it to "
    "`fmadd(-y, s, g*y)` and sums `g*y` as its vectorized reductions do, in lanes and then a tree across them; "
    "by hand in float32, that fma with the tree-ordered sum gives compiled's -0.00159316347 exactly, and with the "
    "sum in sequence eager's -0.00159312226 (truth -0.00159311115): the order of one sum, multiplied by the "
    "cancellation, is the 8.8 bits. In float64 the orders fall the other way (eager 8.8 bits off, compiled "
    "right). Softmin is softmax of -x.", _LANE_SUM, "inductor")
_LOG_SOFTMAX = CompiledFinding(
    "The forward is the decomposition `_log_softmax` (torch/_decomp: `(x - max) - log(sum(exp(x - max)))`, in "
    "float32 for 16-bit inputs), and the backward `g - exp(out) * sum(g)` (`_log_softmax_backward_data`) "
    "cancels and multiplies the forward's rounding: at the float32 worst entry the decomposition's output is "
    "-2.07944131 where eager's is -2.07944155, the correctly rounded one (truth -2.0794414821), and "
    "`1.25 - 0.125 * 10.875` loses 5.2 bits with it. In float16 and bfloat16 the float32 computation keeps the "
    "dominant logit's small gradient where eager's kernel gives 0.", None, "decomposition")
_CROSS_ENTROPY = CompiledFinding(
    "log_softmax's `log(sum(exp(x - max)))` in Inductor's vectorized sum, lanes then a tree across them: at the "
    "row (17.83, 1.125, -0.5, 0.75) the three small terms (5.6e-8 and less) are added to each other before they "
    "meet the dominant 1 and survive, sum 1 + 2**-23 and log-sum 1.19e-7, where eager adds them to 1 one by one "
    "and each is absorbed (log-sum 0). By hand in float32 the tree order gives compiled's gradient -5.96e-8 "
    "(and -out/2 = 5.96e-8 for the target probability), the sequence eager's 0; truth -5.25e-8.", _LANE_SUM,
    "inductor")

_REDUCTION_ORDER = CompiledFinding(
    "The ops are eager's (what is decomposed, vector_norm's `sum(x*x) ** 0.5`, gives eager's number run op by op), "
    "and compiled with vectorization off (`cpp.simdlen = 1`) they give eager's number at the float32 worst "
    "entry: the vectorized kernels make the difference, and theirs hold no vector math function but an IEEE "
    "sqrt, so it is their reductions' order, partial sums per lane and then a tree across the lanes. The "
    "backward then cancels that rounding: the dominant entry's gradient is about 1e-16 of its terms (the "
    "gradient of a norm along the entry that makes it), so a sum's last bit is most of its digits.", _LANE_SUM,
    "inductor")

_ATTENTION = CompiledFinding(
    "The graph is eager's math path (`_safe_softmax`, `_softmax_backward_data` and `mm` decomposed, which "
    "run op by op give eager's number at the float64 and bfloat16 worst entries); Inductor fuses the softmax "
    "backward into `fmadd(-y, s, dP*y)` with its own order of `s = sum(dP*y)`, vectorized or not. At the worst "
    "entries `dP - s` cancels terms of 1.6e308 (values near -4.5e307 times the cotangent), so the last bits of "
    "that sum are ±1e292 in dq under any order: eager's 2.8e278 and compiled's -1.7e292 at the float64 worst "
    "entry, and 1.9e278 to 5.5e292 by hand for the orders and forms tried (sequence or tree; `y (dP - s)`, "
    "`dP y - y s`, fma). Which side of the budget an entry falls on is the order's.", "fmadd(", "inductor")

#: Op -> why its compiled entry differs from eager's (docs/torch_structured.md,
#: "Compiled against eager"); ops not named here are measured but not named by hand.
COMPILED_FINDINGS = {
    **{name: _WELFORD for name in ("torch.var", "torch.std", "torch.var_mean", "torch.nn.functional.layer_norm",
                                   "torch.nn.functional.group_norm", "torch.nn.functional.batch_norm",
                                   "torch.nn.functional.instance_norm")},
    **{key: _NORM_DECOMPOSED for key in (("torch.nn.functional.layer_norm", "float32"),
                                         ("torch.nn.functional.layer_norm", "bfloat16"),
                                         ("torch.nn.functional.batch_norm", "float32"),
                                         ("torch.nn.functional.batch_norm", "bfloat16"),
                                         ("torch.nn.functional.group_norm", "float64"))},
    **{name: _HALF for name in ("torch.nn.functional.binary_cross_entropy_with_logits",
                                "torch.nn.functional.binary_cross_entropy_with_logits(pos_weight)",
                                "torch.nn.functional.kl_div", "torch.nn.functional.poisson_nll_loss",
                                "torch.nn.functional.poisson_nll_loss(log_input=False)",
                                "torch.nn.functional.pairwise_distance",
                                "torch.nn.functional.cross_entropy(label_smoothing=0.1)")},
    **{name: _HALF_DECOMPOSED for name in ("torch.nn.functional.binary_cross_entropy",
                                           "torch.nn.functional.mse_loss")},
    "torch.nn.functional.softmax": _SOFTMAX,
    "torch.nn.functional.softmin": _SOFTMAX,
    "torch.nn.functional.log_softmax": _LOG_SOFTMAX,
    **{(name, "float32"): _REDUCTION_ORDER for name in ("torch.nn.functional.normalize",
                                                        "torch.nn.functional.rms_norm",
                                                        "torch.nn.functional.cosine_similarity",
                                                        "torch.nn.functional.triplet_margin_loss")},
    ("torch.nn.functional.rms_norm", "bfloat16"): _REDUCTION_ORDER,
    **{(name, dtype): _HALF for name in ("torch.nn.functional.normalize", "torch.nn.functional.cosine_similarity",
                                         "torch.nn.functional.triplet_margin_loss")
       for dtype in ("float16", "bfloat16")},
    ("torch.nn.functional.cosine_embedding_loss", "float16"): _HALF,
    **{("torch.nn.functional.cosine_embedding_loss", dtype): CompiledFinding(
        "Reduction order again, through an overflow: the vectorized sum of `a*b`, lanes then a tree, adds the row "
        "(-1.875, -1.5, 1.375, 1.875) x 1.7e38 as (a0 b0 + a2 b2) + (a1 b1 + a3 b3) = -2.13e37, where the sequence "
        "of eager's kernel (and of the unvectorized compile) overflows float32 at its second term (-3.19e38 - "
        "2.55e38 = -inf); `|b|^2` is inf in both, so compiled `cos` is finite / inf = 0 and its gradient 0 (truth "
        "8.1e-40), eager's -inf / inf = NaN. By hand in float32: sequence -inf, tree -2.13e37. bfloat16 inputs are "
        "summed in float32 the same way.", _LANE_SUM, "inductor") for dtype in ("float32", "bfloat16")},
    **{name: _ATTENTION for name in ("torch.nn.functional.scaled_dot_product_attention",
                                     "torch.nn.functional.scaled_dot_product_attention(attn_mask)",
                                     "torch.nn.functional.scaled_dot_product_attention(is_causal=True)")},
    **{(name, dtype): finding for name in ("torch.nn.functional.cross_entropy",
                                           "torch.nn.functional.cross_entropy(probabilities)")
       for dtype, finding in (("float32", _CROSS_ENTROPY), ("float16", _HALF), ("bfloat16", _HALF_DECOMPOSED))},
    "torch.nn.functional.smooth_l1_loss": CompiledFinding(
        "The backward's decomposition (`smooth_l1_loss_backward` in torch/_decomp: `where(|x| < beta, "
        "norm*g*x/beta, norm*g*sign(x))`, x = input - target) takes `sign(x)` at input = target = inf, where x is "
        "NaN, and torch's sign of NaN is 0: the gradient is 0, the truth's limit along the diagonal, where "
        "eager's kernel gives NaN.", None, "decomposition"),
    "torch.prod": CompiledFinding(
        "Compiled, prod's backward is the decomposition's product of the exclusive cumulative products from the "
        "left and from the right (the kernel reads the input reversed), with no division: at an infinite entry "
        "the gradient stays defined (1 for a row of one), where eager's `prod_backward` divides the result by "
        "the input when no entry is 0 (inf / inf = NaN).", "((-1L) + ks0 + ((-1L)*x0))", "decomposition"),
    "torch.nn.functional.kl_div(log_target=True)": CompiledFinding(
        "Summation order: Inductor's reduction sums `exp(t) * (t - x)` in per-lane partial sums and then a tree "
        "over the lanes, which adds two terms of -3.4e38 first and overflows (float32, bfloat16) where eager's "
        "order does not and the mean (-8.5e37) is finite; in float16 the float32 accumulation is the gain.",
        "vec_reduce_all", "inductor"),
}

#: The measured compiled verdicts where they differ from the eager expectation
#: (`pytest cases/torch_structured.py --torch-ops --compile`; why: COMPILED_FINDINGS).
COMPILED_EXPECT = {
    "torch.nn.functional.softmax": {"float32-compiled": convicted("lost-digits", "non-finite", "silent-zero",
                                                                  "wrong-sign")},
    "torch.nn.functional.softmin": {"float64-compiled": convicted("lost-digits", "non-finite", "silent-zero",
                                                                  "wrong-sign"),
                                    "float32-compiled": convicted("lost-digits", "non-finite", "silent-zero",
                                                                  "wrong-sign")},
    "torch.nn.functional.binary_cross_entropy": {"float16-compiled": certified()},
    "torch.nn.functional.normalize": {"float16-compiled": convicted("lost-digits", "non-finite", "silent-zero",
                                                                    "underflow", "wrong-sign")},
    "torch.var_mean": {"float64-compiled": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign"),
                       "float32-compiled": convicted("lost-digits", "non-finite", "silent-zero", "wrong-sign")},
    "torch.nn.functional.cosine_similarity": {"float16-compiled": convicted("finite-vs-inf", "lost-digits",
                                                                            "non-finite", "wrong-sign")},
}
with_compiled(COMPILED_EXPECT, CASES)

#: What the harness does where the truth is undefined or a choice, and what it gets wrong
#: on these cases (the page's "Harness notes").
HARNESS_NOTES = (
    "**Several infinite entries: a limit only where every path agrees.** The truth at a point with ±inf entries "
    "is read along several paths out (all entries together, one out of step; harness.truth.limits). A row all "
    "-inf (masked), +inf beside -inf in a sum (cumsum, var, the corners of the losses where x = t = +inf) have "
    "limits that depend on the path: indeterminate, listed with their range and not failed, so torch's NaN "
    "there is no finding (`indeterminate=\"finite\"` fails it).",
    "**Kinks are not judged.** A norm's or a standard deviation's gradient at a row of zeros or a constant "
    "row (the derivative of |x| or sqrt at 0) is a kink: counted, not judged (vector_norm: 11 entries in "
    "float32, std: 352). `normalize` has no kink there (`max(norm, eps)` is smooth at 0) and is judged.",
    "**NaN entries.** An output a NaN entry does not reach (another channel of batch_norm, the logits "
    "nll_loss does not pick) has a truth, solved as a function of the other entries; one it reaches must be NaN.",
    "**The budget has no factor for the length of a reduction.** A recursive sum of n terms is entitled to "
    "`(n - 1) eps sum |partial sums|`; the per-point budget is `kappa` times a few ULPs. cumsum's last prefix "
    "at mixed signs of ~1e307 summing to 5e291 (torch: 0) is within the first and 4.4 bits over the second.",
    "**Domains chosen here.** Attention's inputs are finite (at q = inf beside k = -inf a score's limit "
    "depends on the path, and no truth is read); rows of one entry are outside var, std, var_mean and "
    "instance_norm (n - 1 = 0, and training-mode instance_norm refuses them); rms_norm's eps is given "
    "(its default is the input dtype's epsilon, which a reference cannot see); pos_weight is a constant.",
)
