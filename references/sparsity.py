"""Sparsity penalties on hidden activations, the plain mathematics.

From the thread "Activation Sparsity For Non-Sigmoid Units":

* the cross entropy of a sigmoid unit's activation ``h = sigmoid(z)`` with a
  desired probability ``p``, ``p*log(p/h) + (1-p)*log((1-p)/(1-h))`` (the KL
  divergence of Bernoulli(p) from Bernoulli(h));
* the Student-t penalty ``log(1 + h**2)``;
* for units unbounded above (relu), the squared distance of each unit's mean
  activation over a mini-batch from 0, ``sum_u (0 - mean_b h[b][u])**2``.
"""

from __future__ import annotations

import mpmath

from references.sigmoid_loss import sigmoid


def kl_sparsity(z, p):
    """``p*log(p/h) + (1-p)*log((1-p)/(1-h))`` with ``h = sigmoid(z)``.

    ``1 - h`` is written ``sigmoid(-z)``, the same number, which mpmath's
    finite precision resolves at every ``z``.

    Example:
        >>> p = mpmath.mpf(1) / 16
        >>> kl_sparsity(mpmath.log(p / (1 - p)), p) < mpmath.mpf(10) ** -40   # 0 where h = p
        True
    """
    h, one_minus_h = sigmoid(z), sigmoid(-z)
    return p * mpmath.log(p / h) + (1 - p) * mpmath.log((1 - p) / one_minus_h)


def student_t(h):
    """The Student-t penalty ``log(1 + h**2)``.

    Example:
        >>> mpmath.nstr(student_t(mpmath.mpf(1)), 6)   # log 2
        '0.693147'
    """
    return mpmath.log(1 + h**2)


def mean_activation(h):
    """``sum_u (0 - mean_b h[b][u])**2`` of a batch ``h[b][u]`` (a nested list of ``mpf``).

    Example:
        >>> mean_activation([[mpmath.mpf(1), mpmath.mpf(2)], [mpmath.mpf(3), mpmath.mpf(0)]])   # 2**2 + 1**2
        mpf('5.0')
    """
    batch = len(h)
    means = [mpmath.fsum(row[u] for row in h) / batch for u in range(len(h[0]))]
    return mpmath.fsum((0 - m) ** 2 for m in means)
