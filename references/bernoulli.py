"""The Bernoulli log-likelihood of an observation given a logit, the plain mathematics.

    theta = sigmoid(logit)
    log p(obs | theta) = obs * log(theta) + (1 - obs) * log(1 - theta)

with ``obs`` a label in {0, 1}, or a soft label in [0, 1] (then it is minus the
binary cross-entropy). ``0 * log(0)`` is 0: ``theta**0 = 1`` even for
``theta = 0``, so a certain event that happens costs nothing.
"""

from __future__ import annotations

import mpmath

from references.sigmoid_loss import sigmoid


def _xlog(weight, p):
    """``weight * log(p)``, 0 when ``weight`` is 0 (whatever ``p``)."""
    return 0 if weight == 0 else weight * mpmath.log(p)


def log_likelihood(logit, obs):
    """``obs * log(theta) + (1 - obs) * log(1 - theta)`` with ``theta = sigmoid(logit)``.

    ``1 - theta`` is written ``sigmoid(-logit)``, the same number, which
    mpmath's finite precision resolves at every logit (see
    ``references.sigmoid_loss.loss_neg``).

    Example:
        >>> mpmath.nstr(log_likelihood(mpmath.mpf(0), mpmath.mpf(1)), 6)   # log(1/2)
        '-0.693147'
        >>> log_likelihood(mpmath.mpf(-2000), mpmath.mpf(0))                 # certain and observed
        mpf('0.0')
    """
    return _xlog(obs, sigmoid(logit)) + _xlog(1 - obs, sigmoid(-logit))
