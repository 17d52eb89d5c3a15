"""References of cases/second_order.py beyond the shared softplus."""

import mpmath


def logsigmoid(x):
    """log(sigmoid(x)) = -log(1 + exp(-x)); mpmath's exponents do not overflow."""
    return -mpmath.log(1 + mpmath.exp(-x))
