"""Losses whose gradients people derive by hand, the plain mathematics.

From the threads "Gradient descent on linear regression not converging",
"Visualizing Backpropogation - Minimizing Errors in a neural network" and
"What would be a good loss function to penalize the magnitude and sign
difference".
"""

from __future__ import annotations

import mpmath

from references.sigmoid_loss import sigmoid


def linear_regression_mse(m, b, xs, ys):
    """The mean squared error of the line ``m*x + b`` on the data ``(xs, ys)``.

    Example:
        >>> linear_regression_mse(mpmath.mpf(3), mpmath.mpf(1), [0, 1, 2], [0, 3, 6])   # off by 1 everywhere
        mpf('1.0')
    """
    return mpmath.fsum((y - (m * x + b)) ** 2 for x, y in zip(xs, ys)) / len(xs)


def network_output(w1, w2, a0):
    """The output ``a2 = sigmoid(w2 * sigmoid(w1 * a0))`` of a one-hidden-unit sigmoid network.

    Example:
        >>> network_output(mpmath.mpf(0), mpmath.mpf(0), mpmath.mpf(1))
        mpf('0.5')
    """
    return sigmoid(w2 * sigmoid(w1 * a0))


def network_squared_error(w1, w2, a0, y):
    """``(a2 - y)**2 / 2`` for the network's output ``a2``.

    Example:
        >>> network_squared_error(mpmath.mpf(0), mpmath.mpf(0), mpmath.mpf(1), mpmath.mpf(1))
        mpf('0.125')
    """
    return (network_output(w1, w2, a0) - y) ** 2 / 2


def network_cross_entropy(w1, w2, a0, y):
    """``-(y*log(a2) + (1-y)*log(1-a2))`` for the network's output ``a2``, a label ``y`` in {0, 1}.

    ``1 - a2`` is written ``sigmoid(-w2 * a1)``, the same number, which mpmath's
    finite precision resolves at every weight.

    Example:
        >>> mpmath.nstr(network_cross_entropy(mpmath.mpf(0), mpmath.mpf(0), mpmath.mpf(1), 1), 6)   # log 2
        '0.693147'
    """
    score = w2 * sigmoid(w1 * a0)
    return -mpmath.log(sigmoid(score)) if y == 1 else -mpmath.log(sigmoid(-score))


def elliptic_paraboloid(x, y, c_diff_sign, c_same_sign):
    """The elliptic paraboloid rotated by ``pi/4``:
    ``x_rot**2 / c_diff_sign + y_rot**2 / c_same_sign``.

    ``cos(pi/4) = sin(pi/4) = 1/sqrt(2)``, so ``x_rot = (x + y)/sqrt(2)`` and
    ``y_rot = (y - x)/sqrt(2)``.

    Example:
        >>> mpmath.nstr(elliptic_paraboloid(mpmath.mpf(1), mpmath.mpf(1), 4, 2), 6)   # x_rot = sqrt 2, y_rot = 0
        '0.5'
    """
    x_rot = (x + y) / mpmath.sqrt(2)
    y_rot = (y - x) / mpmath.sqrt(2)
    return x_rot**2 / c_diff_sign + y_rot**2 / c_same_sign


def relu(x):
    """``max(x, 0)``."""
    return x if x > 0 else mpmath.mpf(0)


def squared_error_negative_penalty(y_pred, y, c):
    """``(y - y_pred)**2 + c * relu(-y_pred)``: squared error plus a penalty on negative predictions.

    Example:
        >>> squared_error_negative_penalty(mpmath.mpf(-1), mpmath.mpf(1), 2)   # 4 + 2
        mpf('6.0')
    """
    return (y - y_pred) ** 2 + c * relu(-y_pred)
