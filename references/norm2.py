"""The squared-norm (norm2) loss between predictions and targets, the plain mathematics.

For ``N`` data points of ``D`` variables,

    loss(x, y)     = (1/N) * sum_i || x_i - y_i ||^2 = (1/N) * sum_i sum_j (x_ij - y_ij)^2
    log_loss(x, y) = log(loss(x, y))

``log_loss`` is the loss in log space, what a ``logsumexp(2 * log|x - y|)``
computes: it has the same minimisers and stays finite for every finite input,
where ``loss`` itself passes the largest float once ``|x - y|`` passes its
square root. Both take the residual ``d = x - y`` as a nested list of ``mpf``
shaped ``(N, D)``.
"""

from __future__ import annotations

import mpmath


def mean_squared_norm(d):
    """``(1/N) * sum_i ||d_i||^2``.

    Example:
        >>> mean_squared_norm([[mpmath.mpf(3), mpmath.mpf(4)]])
        mpf('25.0')
    """
    return mpmath.fsum(v ** 2 for row in d for v in row) / len(d)


def log_mean_squared_norm(d):
    """``log((1/N) * sum_i ||d_i||^2)``; ``-inf`` when ``d == 0``.

    Example:
        >>> mpmath.nstr(log_mean_squared_norm([[mpmath.mpf(3), mpmath.mpf(4)]]), 6)   # log 25
        '3.21888'
    """
    return mpmath.log(mean_squared_norm(d))
