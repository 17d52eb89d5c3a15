"""Cross-channel local response normalization (LRN), the plain mathematics.

For an NCHW input ``a`` and a window of ``size`` channels,

    scale[n, c, h, w] = k + alpha / size * sum over c' in window(c) of a[n, c', h, w]**2
    b[n, c, h, w]     = a[n, c, h, w] * scale[n, c, h, w] ** -beta

(Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", section 3.3, with the ``alpha / size`` of
Caffe's ``lrn_layer.cpp``). The window is cuDNN's, documented for every
``size``: ``c - (size - 1) // 2 .. c + size - 1 - (size - 1) // 2``; for odd
``size`` it is Caffe's centred window. Channels outside ``0 .. C-1`` count as
zeros, so the divisor stays ``size`` at the borders.
"""

from __future__ import annotations

import mpmath


def window(c: int, size: int) -> range:
    """The channels that output channel ``c`` reads (possibly outside ``0 .. C-1``).

    Example:
        >>> list(window(0, 5)), list(window(3, 2))
        ([-2, -1, 0, 1, 2], [3, 4])
    """
    first = c - (size - 1) // 2
    return range(first, first + size)


def lrn(a, size: int, alpha: float, beta: float, k: float):
    """LRN of a nested list of ``mpf`` shaped ``(N, C, H, W)``; same shape out.

    Args:
        a: the activations, ``a[n][c][h][w]``.
        size: channels in the window.
        alpha, beta, k: the parameters of ``scale`` above (binary floats, exact in mpmath).

    Example:
        >>> b = lrn([[[[mpmath.mpf(2)]]]], size=1, alpha=1.0, beta=1.0, k=0.0)
        >>> b[0][0][0][0]   # 2 / (0 + 2**2)
        mpf('0.5')
    """
    alpha, beta, k = mpmath.mpf(alpha), mpmath.mpf(beta), mpmath.mpf(k)
    out = []
    for image in a:
        channels = len(image)

        def b(c, h, w):
            squares = [image[j][h][w] ** 2 for j in window(c, size) if 0 <= j < channels]
            scale = k + alpha / size * mpmath.fsum(squares)
            return image[c][h][w] * scale ** -beta

        out.append([[[b(c, h, w) for w in range(len(image[c][h]))] for h in range(len(image[c]))]
                    for c in range(channels)])
    return out


def lrn_reference(size: int, alpha: float, beta: float, k: float):
    """The reference of one parameter set, as a case takes it: ``a -> b``.

    Example:
        >>> f = lrn_reference(size=3, alpha=1.0, beta=0.5, k=1.0)
        >>> f([[[[mpmath.mpf(0)]]]])[0][0][0][0]
        mpf('0.0')
    """
    return lambda a: lrn(a, size, alpha, beta, k)
