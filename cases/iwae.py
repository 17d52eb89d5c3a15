"""A tiny importance-weighted autoencoder end to end, and its Gaussian log density.

Source: the question "Importance weighted autoencoder doing worse than VAE"
(Burda, Grosse and Salakhutdinov, "Importance Weighted Autoencoders", 2016, for
the model). The asker's decoder ends in a sigmoid and the Bernoulli
log-likelihood adds ``1e-18`` inside the logs "to avoid nan appearances in
training"; the Gaussian ``log q(z)`` is evaluated at the sampled ``z``. The
per-pixel Bernoulli log-likelihood (``+1e-18`` against logits) is the
``bernoulli`` family; here it is judged inside the whole objective.

Verdicts measured here:

* ``gaussian.thread``: ``-((z - mu) / exp(log_std))**2 / 2 - log_std - log(2 pi)/2``
  at ``z = mu + exp(log_std) * eps``. ``z - mu`` recovers ``exp(log_std) * eps``
  only to the precision of ``mu``: with ``exp(log_std) * |eps|`` below half an
  ulp of ``mu`` the quadratic term is lost, and where ``exp(log_std)``
  overflows or underflows the ratio is ``inf / inf`` or ``0 / 0``. Convicted.
* ``gaussian.reparameterized``: ``-eps**2 / 2 - log_std - log(2 pi)/2``, the same
  function (``(z - mu) / exp(log_std)`` is ``eps`` by construction). Certified.
* ``tiny.probs_eps``: the thread's pipeline (sigmoid decoder, ``+1e-18``
  likelihood, ``log q`` at ``z``), the IW-ELBO by ``logsumexp - log K``.
  Once the decoder saturates (``|logit|`` above 17 in float32, 37 in float64)
  ``1 - sigmoid(l)`` is 0: the log is clamped at ``log 1e-18 = -41.4`` instead
  of ``-l``, and the gradient through the saturated sigmoid is exactly 0.
  In float16 ``1e-18`` rounds to 0 and the log is ``-inf``. Convicted.
* ``tiny.bce_logits``: the likelihood as ``-binary_cross_entropy_with_logits``,
  ``log q`` from ``eps``. The value is right, but PyTorch's backward of that
  loss is ``sigmoid(l) - x``, which cancels to 0 for a confident, correct
  pixel: the true gradient ``sigmoid(-l)``, 7.6e-10 at ``l = 21``, comes out
  as exactly 0 in float32. The issue expected the logits pipeline certified;
  measured, this form of it is convicted.
* ``tiny.logsigmoid``: ``x logsigmoid(l) + (1 - x) logsigmoid(-l)``, whose
  backward is ``sigmoid(-l)`` computed as such, ``log q`` from ``eps``. Every
  term is now right, yet the gradient still loses up to ``log2 |log w|`` bits
  where the decoder is saturated the wrong way (``|logit| >= 100``): each
  ``log w_k`` is rounded to half an ulp of its magnitude (1.8e-12 nats at
  3e4 in float64, 3e-5 at 1000 in float32), and the normalized weights
  ``softmax(log w)`` inherit that absolute error as a relative one. The
  parameters' condition number does not excuse it: the large part of
  ``log w_k`` is common to all samples and cancels in the weights. The issue
  expected the logits pipeline certified; measured, this one is convicted
  (wrong signs in float16 and bfloat16, where half an ulp of 3e4 is 8 nats).
* ``tiny.relative``: the weights from the *differences* ``log w_k - log w_r``
  (``r`` the heaviest sample), each formed from ``z_k - z_r = exp(log_std) *
  (eps_k - eps_r)`` and ``logsigmoid(a) = min(a, 0) - log1p(exp(-|a|))`` so
  that the common part never enters; the IW-ELBO is
  ``log w_r + logsumexp(delta) - log K``. Certified in every dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

import harness
from cases.elbo import iw_elbo_stable
from references.iwae import reparameterized_log_density, tiny_iwae

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# -- the two Gaussian log densities at a reparameterized sample --------------------------------

def gaussian_thread(mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The thread's ``compute_log_probability_gaussian`` at ``z = mu + exp(log_std) * eps``.

    Example:
        >>> gaussian_thread(torch.tensor([1.0]), torch.tensor([-20.0]), torch.tensor([1.0]))   # truth 18.581
        tensor([19.0811])
    """
    z = mu + torch.exp(log_std) * eps
    return -0.5 * ((z - mu) / torch.exp(log_std)) ** 2 - log_std - HALF_LOG_2PI


def gaussian_reparameterized(mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``log N(z; mu, exp(log_std))`` at ``z = mu + exp(log_std) * eps``, from ``eps``.

    Example:
        >>> gaussian_reparameterized(torch.tensor([1.0]), torch.tensor([-20.0]), torch.tensor([1.0]))
        tensor([18.5811])
    """
    # (z - mu) / exp(log_std) is eps exactly; forming z and subtracting mu again
    # keeps only the bits of exp(log_std) * eps that fit beside mu. mu + 0 * eps
    # keeps the dependence (zero) on mu in the graph.
    return -0.5 * eps * eps - log_std - HALF_LOG_2PI + 0 * mu


# -- the IWAE objective, batched: x (B, D), eps (B, K, L) -> IW-ELBO per image (B,) ---------------

def _encode_sample(x, eps, enc_w, enc_b):
    h = x @ enc_w.T + enc_b                                        # (B, 2L)
    latent = h.shape[-1] // 2
    mu, log_std = h[:, None, :latent], h[:, None, latent:]         # (B, 1, L)
    return mu, log_std, mu + torch.exp(log_std) * eps              # z: (B, K, L)


def _decode(z, dec_w, dec_b):
    return z @ dec_w.T + dec_b                                     # logits: (B, K, D)


def _prior_minus_q(z, log_std, eps):
    # log p(z) - log q(z | x), with log q at the sample from eps itself:
    # (z - mu) / exp(log_std) is eps exactly. The log(2 pi) terms cancel.
    return torch.sum(-0.5 * z * z + 0.5 * eps * eps + log_std, -1)


def iwae_probs_eps(x, eps, enc_w, enc_b, dec_w, dec_b) -> torch.Tensor:
    """The thread's IWAE objective: sigmoid decoder, ``+1e-18`` likelihood, ``log q`` at ``z``.

    Example:
        >>> x, eps = torch.ones(1, 3), torch.zeros(1, 2, 1)
        >>> iwae_probs_eps(x, eps, torch.zeros(2, 3), torch.zeros(2), torch.zeros(3, 1), torch.zeros(3))
        tensor([-2.0794])
    """
    mu, log_std, z = _encode_sample(x, eps, enc_w, enc_b)
    decoded = torch.sigmoid(_decode(z, dec_w, dec_b))
    x = x[:, None, :]
    log_px = torch.sum(x * torch.log(decoded + 1e-18) + (1 - x) * torch.log(1 - decoded + 1e-18), -1)
    log_pz = torch.sum(-0.5 * z ** 2, -1) - z.shape[-1] * HALF_LOG_2PI
    log_qz = torch.sum(-0.5 * ((z - mu) / torch.exp(log_std)) ** 2 - log_std, -1) - z.shape[-1] * HALF_LOG_2PI
    return iw_elbo_stable(log_px + log_pz - log_qz)


def iwae_bce_logits(x, eps, enc_w, enc_b, dec_w, dec_b) -> torch.Tensor:
    """The IWAE objective with ``-binary_cross_entropy_with_logits`` as the likelihood.

    Example:
        >>> x, eps = torch.ones(1, 3), torch.zeros(1, 2, 1)
        >>> iwae_bce_logits(x, eps, torch.zeros(2, 3), torch.zeros(2), torch.zeros(3, 1), torch.zeros(3))
        tensor([-2.0794])
    """
    mu, log_std, z = _encode_sample(x, eps, enc_w, enc_b)
    logits = _decode(z, dec_w, dec_b)
    log_px = -torch.sum(F.binary_cross_entropy_with_logits(logits, x[:, None, :].expand_as(logits),
                                                           reduction="none"), -1)
    return iw_elbo_stable(log_px + _prior_minus_q(z, log_std, eps))


def iwae_logsigmoid(x, eps, enc_w, enc_b, dec_w, dec_b) -> torch.Tensor:
    """The IWAE objective with the likelihood ``x logsigmoid(l) + (1 - x) logsigmoid(-l)``.

    Example:
        >>> x, eps = torch.ones(1, 3), torch.zeros(1, 2, 1)
        >>> iwae_logsigmoid(x, eps, torch.zeros(2, 3), torch.zeros(2), torch.zeros(3, 1), torch.zeros(3))
        tensor([-2.0794])
    """
    mu, log_std, z = _encode_sample(x, eps, enc_w, enc_b)
    # log(sigmoid(l)) = logsigmoid(l) and log(1 - sigmoid(l)) = logsigmoid(-l),
    # never forming either probability; logsigmoid's backward is sigmoid(-l)
    # itself, accurate where sigmoid(l) - 1 would cancel.
    a = (2 * x[:, None, :] - 1) * _decode(z, dec_w, dec_b)
    return iw_elbo_stable(torch.sum(F.logsigmoid(a), -1) + _prior_minus_q(z, log_std, eps))


def iwae_relative(x, eps, enc_w, enc_b, dec_w, dec_b) -> torch.Tensor:
    """The IWAE objective with the weights formed from differences of log weights.

    Example:
        >>> x, eps = torch.ones(1, 3), torch.zeros(1, 2, 1)
        >>> iwae_relative(x, eps, torch.zeros(2, 3), torch.zeros(2), torch.zeros(3, 1), torch.zeros(3))
        tensor([-2.0794])
    """
    mu, log_std, z = _encode_sample(x, eps, enc_w, enc_b)
    sign = 2 * x[:, None, :] - 1
    a = sign * _decode(z, dec_w, dec_b)                            # log p(x_d | z_k) = logsigmoid(a_kd)
    log_w = torch.sum(F.logsigmoid(a), -1) + _prior_minus_q(z, log_std, eps)
    r = torch.argmax(log_w.detach(), -1)[:, None, None]            # the heaviest sample of each image
    pick = lambda t: torch.gather(t, 1, r.expand(-1, 1, t.shape[-1]))
    # Differences from sample r, never as log_w - log_w[r]: both carry an error of
    # half an ulp of |log_w|, which the normalized weights would inherit.
    dz = torch.exp(log_std) * (eps - pick(eps))                    # z_k - z_r
    da = sign * (dz @ dec_w.T)                                     # a_k - a_r
    a_r = pick(a)
    # logsigmoid(a) = min(a, 0) - log1p(exp(-|a|)): the min parts differ by
    # a_k - a_r where both are negative; the log1p parts are below log 2.
    dmin = torch.where((a < 0) & (a_r < 0), da, torch.clamp(a, max=0) - torch.clamp(a_r, max=0))
    dtail = F.softplus(-torch.abs(a)) - F.softplus(-torch.abs(a_r))
    z_r, eps_r = pick(z), pick(eps)
    delta = (torch.sum(dmin - dtail, -1) - torch.sum(0.5 * dz * (z + z_r), -1)
             + torch.sum(0.5 * (eps - eps_r) * (eps + eps_r), -1))
    return torch.gather(log_w, 1, r[:, :, 0]).squeeze(1) + iw_elbo_stable(delta)


# -- the tiny IWAE: one image of D = 3 pixels, K = 2 fixed draws of an L = 1 latent -----------------

IMAGE = (1.0, 0.0, 1.0)
EPS = ((0.5,), (-1.25,))


def on_tiny_image(objective):
    """``objective(x, eps, params...)`` as a function of the parameters alone, on ``IMAGE`` and ``EPS``.

    Example:
        >>> f = on_tiny_image(iwae_logsigmoid)
        >>> f(torch.zeros(2, 3), torch.zeros(2), torch.zeros(3, 1), torch.zeros(3))
        tensor(-2.0794)
    """
    def forward(enc_w, enc_b, dec_w, dec_b):
        x = torch.tensor([IMAGE], dtype=enc_w.dtype, device=enc_w.device)
        eps = torch.tensor([EPS], dtype=enc_w.dtype, device=enc_w.device)
        return objective(x, eps, enc_w, enc_b, dec_w, dec_b)[0]
    forward.__name__ = forward.__qualname__ = "tiny_" + objective.__name__
    return forward


tiny_iwae_probs_eps = on_tiny_image(iwae_probs_eps)
tiny_iwae_bce_logits = on_tiny_image(iwae_bce_logits)
tiny_iwae_logsigmoid = on_tiny_image(iwae_logsigmoid)
tiny_iwae_relative = on_tiny_image(iwae_relative)


#: A moderate encoder and decoder: mu = 0.25, log_std = -0.625, so the two
#: samples z = mu + exp(log_std) * eps fall on both sides of 0.
BASE = {
    "enc_w": [[0.5, -0.25, 0.25], [0.125, 0.5, -0.25]],
    "enc_b": [-0.5, -0.5],
    "dec_w": [[1.5], [-2.0], [0.5]],
    "dec_b": [0.5, -0.25, 1.0],
}


def _with(**changes) -> dict:
    params = {k: np.array(v, dtype=np.float64) for k, v in BASE.items()}
    for key, (index, value) in changes.items():
        params[key][index] = value
    return params


def parameter_grid(dtype: torch.dtype) -> list:
    """Scales that saturate the decoder (logits of +-20 ... +-1e4, agreeing and
    disagreeing with the pixels, through the bias and through the weights),
    log_std from -20 to 20 (to 5 in float16), and a mean far from 0 next to a
    small log_std."""
    agree = np.array(IMAGE) * 2 - 1                      # +1 for a 1 pixel, -1 for a 0 pixel
    configs = [_with()]
    configs += [_with(dec_b=(slice(None), s * agree)) for s in (20.0, 1e4)]
    configs += [_with(dec_b=(slice(None), -s * agree)) for s in (20.0, 100.0, 1e4)]
    configs += [_with(dec_w=(slice(None), (s * agree)[:, None])) for s in (40.0, 1e3)]
    # In float16 exp(log_std) * eps squared passes 65504 from log_std = 5.5 on:
    # the prior term, and with it the objective and its gradient, are -inf there.
    spread = (-20.0, 2.0, 5.0) if dtype == torch.float16 else (-20.0, 8.0, 20.0)
    configs += [_with(enc_b=(1, log_std)) for log_std in spread]
    configs += [_with(enc_b=(slice(None), [-1e3, -20.0])), _with(enc_b=(slice(None), [100.0, -4.0]))]
    order = ("enc_w", "enc_b", "dec_w", "dec_b")
    return [tuple(torch.from_numpy(c[k]).to(dtype).to(torch.float64).numpy() for k in order) for c in configs]


def largest_logit(enc_w, enc_b, dec_w, dec_b) -> float:
    """The feature of a point: the largest |logit| of the decoder over the samples."""
    x, eps = torch.tensor([IMAGE], dtype=torch.float64), torch.tensor([EPS], dtype=torch.float64)
    _, _, z = _encode_sample(x, eps, torch.from_numpy(enc_w), torch.from_numpy(enc_b))
    return float(torch.max(torch.abs(_decode(z, torch.from_numpy(dec_w), torch.from_numpy(dec_b)))))


def gaussian_grid(dtype: torch.dtype) -> list:
    """Scalar points (mu, log_std, eps): a mean of 0, of 1.5 and far from 0 (7.9e28
    in float32, 4096 in float16), log_std from -100 to 100, two draws."""
    big = 2.0 ** round(0.75 * math.log2(torch.finfo(dtype).max))
    return [(np.array(mu), np.array(log_std), np.array(eps))
            for mu in (0.0, 1.5, -big) for log_std in (-100.0, -20.0, -6.0, 0.0, 6.0, 20.0, 100.0)
            for eps in (0.5, -1.25)]


def _gaussian(name, forward, expect) -> harness.Case:
    return harness.Case(name, forward, reparameterized_log_density, grid=gaussian_grid, expect=expect,
                        feature=lambda mu, log_std, eps: float(log_std), feature_name="log_std")


TINY = tiny_iwae(IMAGE, EPS)


def _tiny(name, forward, expect) -> harness.Case:
    return harness.Case(name, forward, TINY, grid=parameter_grid, expect=expect,
                        input_names=("enc_w", "enc_b", "dec_w", "dec_b"),
                        feature=largest_logit, feature_name="max |logit|")




CASES = [
    _gaussian("iwae.gaussian.thread", gaussian_thread,
              harness.convicted("non-finite", "lost-digits", "silent-zero")),
    _gaussian("iwae.gaussian.reparameterized", gaussian_reparameterized, harness.certified()),
    _tiny("iwae.tiny.probs_eps", tiny_iwae_probs_eps,
          harness.convicted("non-finite", "lost-digits", "silent-zero", "wrong-sign")),
    _tiny("iwae.tiny.bce_logits", tiny_iwae_bce_logits,
          harness.convicted("silent-zero", "lost-digits", "wrong-sign")),
    _tiny("iwae.tiny.logsigmoid", tiny_iwae_logsigmoid,
          harness.convicted("lost-digits", "wrong-sign", "silent-zero", within=(100, math.inf))),
    _tiny("iwae.tiny.relative", tiny_iwae_relative, harness.certified()),
]


# -- benchmarks -------------------------------------------------------------------------------
# `pytest cases/iwae.py --benchmark-only` times forward + backward (in the four
# parameter tensors) of every batched objective at the IWAE's MNIST size: 100
# binarized images of 784 pixels (13% on), K = 50 samples of a 50-dimensional
# latent, float32, weights ~ N(0, 1/fan_in) and a decoder bias of -2 (fixed
# seed). A plain `pytest cases/` runs each once as a test (benchmarks disabled)
# on a batch of 2 images: that it runs, not how fast.

import pytest

from harness.tables.benchmarking import DEVICES, forward_backward, sized

BATCH, SAMPLES, LATENT, PIXELS = 100, 50, 50, 784
BATCH_ONCE = 2

#: Implementation -> (function, the naive twin its time is compared with).
BENCHMARKS = {
    "probs_eps": (iwae_probs_eps, None),
    "bce_logits": (iwae_bce_logits, "probs_eps"),
    "logsigmoid": (iwae_logsigmoid, "probs_eps"),
    "relative": (iwae_relative, "probs_eps"),
}


def batch(device: str, seed: int = 0, size: int = BATCH) -> tuple[torch.Tensor, ...]:
    """``x, eps, enc_w, enc_b, dec_w, dec_b`` for ``size`` images on ``device``; the parameters require gradients."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((size, PIXELS), 0.13), generator=gen)
    eps = torch.randn(size, SAMPLES, LATENT, generator=gen)
    params = (torch.randn(2 * LATENT, PIXELS, generator=gen) / PIXELS ** 0.5, torch.zeros(2 * LATENT),
              torch.randn(PIXELS, LATENT, generator=gen) / LATENT ** 0.5, torch.full((PIXELS,), -2.0))
    return (x.to(device), eps.to(device)) + tuple(p.to(device).requires_grad_() for p in params)




@pytest.mark.benchmark(group="iwae")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("implementation", list(BENCHMARKS))
def test_benchmark(benchmark, implementation, device):
    f, twin = BENCHMARKS[implementation]
    size = sized(benchmark, BATCH, BATCH_ONCE)
    benchmark.extra_info.update(implementation=implementation, twin=twin, batch=size, samples=SAMPLES,
                                latent=LATENT, pixels=PIXELS, dtype="float32", device=device,
                                threads=torch.get_num_threads())
    inputs = batch(device, size=size)
    benchmark(forward_backward(lambda: f(*inputs).sum(), inputs[2:], device))
