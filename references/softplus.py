"""softplus and logsumexp as plain mathematics (mpmath's exponents do not overflow)."""

import mpmath


def softplus(x):
    return mpmath.log(1 + mpmath.exp(x))


def logsumexp(rows):
    """Over the last axis of a nested list of rows."""
    return [mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row)) for row in rows]
