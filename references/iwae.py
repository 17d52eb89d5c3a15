"""The Gaussian densities of a variational autoencoder, and a whole
importance-weighted autoencoder (IWAE) objective, the plain mathematics.

    Bernoulli:   log p(x | l) = x * log(sigmoid(l)) + (1 - x) * log(1 - sigmoid(l)),
                 l the decoder's logit, x in {0, 1} (``references.bernoulli``)
    Gaussian:    log N(z; mu, sigma) = -((z - mu) / sigma)**2 / 2 - log(sigma) - log(2 pi) / 2
    Reparameterized sample:  z = mu + exp(log_std) * eps, eps fixed, so that
                 log q(z) = -eps**2 / 2 - log_std - log(2 pi) / 2

``(z - mu) / exp(log_std)`` is ``eps`` by definition of the sample, and it is
written so: mpmath's ``z - mu`` is an *exact* 0 once ``exp(log_std) * eps``
falls below ``2**-192`` of ``mu``, which two working precisions agree on, so
no precision check could flag the lost ``-eps**2 / 2``. (For the same reason
``references.bernoulli`` writes ``1 - sigmoid(l)`` as ``sigmoid(-l)``.)
"""

from __future__ import annotations

import mpmath

from references.bernoulli import log_likelihood as bernoulli_log_likelihood


def gaussian_log_density(z, mu, log_std):
    """``log N(z; mu, exp(log_std))`` of one coordinate.

    Example:
        >>> mpmath.nstr(gaussian_log_density(mpmath.mpf(0), mpmath.mpf(0), mpmath.mpf(0)), 6)
        '-0.918939'
    """
    return -((z - mu) / mpmath.exp(log_std)) ** 2 / 2 - log_std - mpmath.log(2 * mpmath.pi) / 2


def reparameterized_log_density(mu, log_std, eps):
    """``log N(z; mu, exp(log_std))`` at the sample ``z = mu + exp(log_std) * eps``.

    Example:
        >>> mpmath.nstr(reparameterized_log_density(mpmath.mpf(5), mpmath.mpf(0), mpmath.mpf(0)), 6)
        '-0.918939'
    """
    return -eps ** 2 / 2 - log_std - mpmath.log(2 * mpmath.pi) / 2


def tiny_iwae(x, eps):
    """The IW-ELBO of one image as a function of the encoder and decoder parameters.

    The encoder is linear, ``[mu; log_std] = enc_w @ x + enc_b``; sample ``k`` is
    ``z_k = mu + exp(log_std) * eps[k]``; the decoder is linear,
    ``logits_k = dec_w @ z_k + dec_b``, with a Bernoulli output; the prior is
    ``N(0, I)``; ``log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x)`` and the
    result is ``log((1/K) * sum_k w_k)``.

    Args:
        x: the image, ``D`` binary pixels (floats).
        eps: the fixed standard-normal draws, ``K`` rows of ``L`` floats.

    Returns:
        ``(enc_w, enc_b, dec_w, dec_b) -> mpf``, shapes ``(2L, D)``, ``(2L,)``, ``(D, L)``, ``(D,)``.

    Example:
        >>> f = tiny_iwae([1.0], [[0.0]])
        >>> zero = mpmath.mpf(0)
        >>> mpmath.nstr(f([[zero], [zero]], [zero, zero], [[zero]], [zero]), 6)   # log(1/2)
        '-0.693147'
    """
    x = [mpmath.mpf(v) for v in x]
    eps = [[mpmath.mpf(v) for v in row] for row in eps]

    def objective(enc_w, enc_b, dec_w, dec_b):
        latent = len(enc_b) // 2
        h = [mpmath.fsum(w * xd for w, xd in zip(row, x)) + b for row, b in zip(enc_w, enc_b)]
        mu, log_std = h[:latent], h[latent:]
        log_w = []
        for e in eps:
            z = [m + mpmath.exp(s) * ej for m, s, ej in zip(mu, log_std, e)]
            logits = [mpmath.fsum(w * zl for w, zl in zip(row, z)) + b for row, b in zip(dec_w, dec_b)]
            log_px = mpmath.fsum(bernoulli_log_likelihood(l, xd) for l, xd in zip(logits, x))
            log_pz = mpmath.fsum(gaussian_log_density(zl, 0, 0) for zl in z)
            log_qz = mpmath.fsum(reparameterized_log_density(m, s, ej) for m, s, ej in zip(mu, log_std, e))
            log_w.append(log_px + log_pz - log_qz)
        return mpmath.log(mpmath.fsum(mpmath.exp(v) for v in log_w) / len(log_w))

    return objective
