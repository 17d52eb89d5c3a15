"""References of cases/second_order.py beyond the shared softplus."""

import mpmath


def logsigmoid(x):
    """log(sigmoid(x)) = -log1p(exp(-x)); mpmath's exponents do not overflow,
    and log1p keeps exp(-x) where 1 + exp(-x) would absorb it (x > 250 at
    the engine's starting precision), which would send the truth to 2400 bits."""
    return -mpmath.log1p(mpmath.exp(-x))
