"""The sigmoid + log loss of a skip-gram model, the plain mathematics.

A score ``x`` (the dot product of an anchor and a tag embedding) is turned into
a probability by the logistic sigmoid and scored by its negative log:

    sigmoid(x)  = 1 / (1 + exp(-x))
    loss_pos(x) = -log(sigmoid(x))          the tag belongs to the anchor
    loss_neg(x) = -log(1 - sigmoid(x))      the tag does not

(the thread "PyTorch: Kludges To Ensure Numerical Stability"; Mikolov et al.,
"Distributed Representations of Words and Phrases and their Compositionality",
2013, for negative sampling).
"""

from __future__ import annotations

import mpmath


def sigmoid(x):
    """The logistic function.

    Example:
        >>> sigmoid(mpmath.mpf(0))
        mpf('0.5')
    """
    return 1 / (1 + mpmath.exp(-x))


def loss_pos(x):
    """``-log(sigmoid(x))``.

    Example:
        >>> mpmath.nstr(loss_pos(mpmath.mpf(0)), 6)   # log 2
        '0.693147'
    """
    return -mpmath.log(sigmoid(x))


def loss_neg(x):
    """``-log(1 - sigmoid(x))``.

    ``1 - sigmoid(x)`` is written ``sigmoid(-x)``, the same number: mpmath's
    exponents are unbounded but its precision is not, and the difference
    ``1 - sigmoid(1e30)`` would need 1e30 bits to be anything but 0.

    Example:
        >>> mpmath.nstr(loss_neg(mpmath.mpf(1000)), 6)
        '1000.0'
    """
    return -mpmath.log(sigmoid(-x))


def dot(a, b):
    """The exact dot product of two lists of ``mpf`` (rounded once, at the working precision).

    Example:
        >>> dot([mpmath.mpf(1), mpmath.mpf(2)], [mpmath.mpf(3), mpmath.mpf(4)])
        mpf('11.0')
    """
    return mpmath.fdot(a, b)


def skipgram_pos(anchor, tag):
    """``loss_pos`` of the score ``anchor . tag`` (two vectors of ``mpf``).

    Example:
        >>> one = [mpmath.mpf(1)]
        >>> mpmath.nstr(skipgram_pos(one, [mpmath.mpf(0)]), 6)
        '0.693147'
    """
    return loss_pos(dot(anchor, tag))


def skipgram_neg(anchor, tag):
    """``loss_neg`` of the score ``anchor . tag`` (two vectors of ``mpf``).

    Example:
        >>> one = [mpmath.mpf(1)]
        >>> mpmath.nstr(skipgram_neg(one, [mpmath.mpf(0)]), 6)
        '0.693147'
    """
    return loss_neg(dot(anchor, tag))
