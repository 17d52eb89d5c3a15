"""Evidence lower bounds on log importance weights, the plain mathematics.

A variational autoencoder draws ``K`` samples ``z_k ~ q(z | x)`` per data point
and forms the log importance weights
``log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x)``. From them:

    IW-ELBO(x, K) = log( (1/K) * sum_k w_k )        (Burda, Grosse and Salakhutdinov,
                                                      "Importance Weighted Autoencoders", 2016)
    ELBO_K(x)     = (1/K) * sum_k log w_k           (the K-sample average of the VAE bound)

Both take the weights as a nested list of ``mpf`` shaped ``(B, K)`` and return
one value per row. A weight of zero is legal: its log is ``-inf``.
"""

from __future__ import annotations

import mpmath


def iw_elbo(log_w):
    """The importance-weighted ELBO of each row of log weights.

    Example:
        >>> [mpmath.nstr(v, 6) for v in iw_elbo([[mpmath.mpf(0), mpmath.log(3)]])]   # log((1 + 3) / 2)
        ['0.693147']
    """
    return [mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row) / len(row)) for row in log_w]


def mean_log_weight(log_w):
    """The K-sample average ELBO of each row: the mean of its log weights.

    Example:
        >>> mean_log_weight([[mpmath.mpf(-1), mpmath.mpf(-3)]])
        [mpf('-2.0')]
    """
    return [mpmath.fsum(row) / len(row) for row in log_w]
