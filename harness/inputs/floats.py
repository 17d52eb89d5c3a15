"""Facts about the floating-point formats, exact rounding of mpmath values to
them, and the error measure (ULPs and bits, as Herbie reports them)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import mpmath
import numpy as np
import torch


@dataclass(frozen=True)
class Format:
    """A binary format: ``precision`` significand bits (implicit bit included)."""

    name: str
    precision: int
    emin: int          # exponent of the smallest normal: 2**emin
    emax: int          # exponent of the largest binade: max = (2 - 2**(1-p)) * 2**emax
    width: int         # storage bits: the error charged for a NaN against a number

    @property
    def eps(self) -> float:
        return 2.0 ** (1 - self.precision)

    @property
    def tiny(self) -> float:
        return 2.0 ** self.emin

    @property
    def subnormal(self) -> float:
        return 2.0 ** (self.emin - self.precision + 1)

    @property
    def max(self) -> float:
        return (2.0 - 2.0 ** (1 - self.precision)) * 2.0 ** self.emax

    def ulp(self, x: float) -> float:
        """Spacing of the format at ``x`` (the subnormal spacing below ``tiny``)."""
        if not math.isfinite(x) or x == 0:
            return self.subnormal
        e = max(math.frexp(abs(x))[1] - 1, self.emin)
        return 2.0 ** (e - self.precision + 1)


FORMATS = {
    torch.float64: Format("float64", 53, -1022, 1023, 64),
    torch.float32: Format("float32", 24, -126, 127, 32),
    torch.float16: Format("float16", 11, -14, 15, 16),
    torch.bfloat16: Format("bfloat16", 8, -126, 127, 16),
}


def fmt(dtype: torch.dtype) -> Format:
    try:
        return FORMATS[dtype]
    except KeyError:
        raise ValueError(f"unsupported dtype {dtype}; the harness judges {', '.join(f.name for f in FORMATS.values())}") from None


def round_to(value: mpmath.mpf, f: Format) -> float:
    """Round an mpmath value to the nearest float of ``f`` (ties to even),
    overflow to ±inf, underflow through the subnormals to ±0; returned as a
    Python float (every float16/bfloat16/float32 value is one exactly)."""
    sign, man, exp, bc = value._mpf_
    if not man:
        if value == 0:
            return -0.0 if sign else 0.0
        return float(value)  # inf or nan
    # value = (-1)^sign * man * 2^exp, man has bc bits: top bit at exp + bc - 1.
    top = exp + bc - 1
    if top > f.emax + 1:
        return -math.inf if sign else math.inf
    if top < f.emin - f.precision - 1:  # below half the smallest subnormal
        return -0.0 if sign else 0.0
    quantum = max(top, f.emin) - f.precision + 1
    if exp >= quantum:
        q, e = man, exp
    else:
        shift = quantum - exp
        q, rest = divmod(man, 1 << shift)
        half = 1 << (shift - 1)
        if rest > half or (rest == half and q & 1):
            q += 1
        e = quantum
    magnitude = math.ldexp(q, e) if q.bit_length() + e <= 1024 else math.inf
    if magnitude > f.max:
        magnitude = math.inf
    return -magnitude if sign else magnitude


def to_mpf(x: float) -> mpmath.mpf:
    """The exact value of a float (every float is a dyadic rational)."""
    return mpmath.mpf(x)


@lru_cache(maxsize=None)
def _ordinal_dtype(f: Format):
    return {64: (np.float64, np.int64), 32: (np.float32, np.int32), 16: (np.float16, np.int16)}[f.width]


def ordinal(x: np.ndarray, f: Format) -> np.ndarray:
    """Integers that count the floats of ``f``: adjacent floats differ by 1, ±0 map to 0."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return _ordinal(x, f)


def _ordinal(x: np.ndarray, f: Format) -> np.ndarray:
    if f.name == "bfloat16":
        bits = x.astype(np.float32).view(np.int32).astype(np.int64) >> 16
        sign_mask = 0x8000
    else:
        ftype, itype = _ordinal_dtype(f)
        bits = x.astype(ftype).view(itype).astype(np.int64)
        sign_mask = 1 << (f.width - 1)
        if f.width == 64:
            bits = x.view(np.int64)
            return np.where(bits < 0, -(bits & 0x7FFFFFFFFFFFFFFF), bits)
    bits &= (1 << f.width) - 1
    return np.where(bits & sign_mask, -(bits & (sign_mask - 1)), bits)


def from_ordinal(o: np.ndarray, f: Format) -> np.ndarray:
    """The floats of ``f`` that ``ordinal`` counts, as float64 (0 gives +0).

    Example:
        >>> f = fmt(torch.float16)
        >>> from_ordinal(ordinal(np.array([-1.0, 0.0, 65504.0]), f) + 1, f).tolist()
        [-0.99951171875, 5.960464477539063e-08, inf]
    """
    o = np.asarray(o, dtype=np.int64)
    with np.errstate(invalid="ignore"):   # NaN patterns past inf
        values = _magnitude(np.abs(o), f)
    return np.where(o < 0, -values, values)


def _magnitude(magnitude: np.ndarray, f: Format) -> np.ndarray:
    if f.width == 64:
        return magnitude.view(np.float64)
    if f.name == "bfloat16":
        return (magnitude.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    ftype, itype = _ordinal_dtype(f)
    return magnitude.astype(itype).view(ftype).astype(np.float64)


def ulps_between(a: np.ndarray, b: np.ndarray, f: Format) -> np.ndarray:
    """Floats of ``f`` between ``a`` and ``b``, as float64 (may exceed 2**53).
    NaN on either side gives NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    # inf's bit pattern is max's plus one, so infinities count as one step past max.
    oa = ordinal(np.where(np.isnan(a), 0.0, a), f)
    ob = ordinal(np.where(np.isnan(b), 0.0, b), f)
    same_side = (oa >= 0) == (ob >= 0)
    # Exact integer difference on one side of zero; across zero it cannot
    # overflow in float64 and its last digits do not matter.
    d = np.where(same_side, np.abs(np.where(same_side, oa - ob, 0)).astype(np.float64),
                 np.abs(oa.astype(np.float64)) + np.abs(ob.astype(np.float64)))
    return np.where(np.isnan(a) | np.isnan(b), np.nan, d)


def bits_of_error(ulps: np.ndarray, f: Format) -> np.ndarray:
    """Herbie's measure: log2(1 + ULPs); NaN (a non-number against a number)
    counts as the format's full width."""
    ulps = np.asarray(ulps, dtype=np.float64)
    return np.where(np.isnan(ulps), float(f.width), np.minimum(np.log2(1.0 + ulps), f.width))


def representable(x: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Whether each float64 value is exactly a value of ``dtype``."""
    x = np.asarray(x, dtype=np.float64)
    back = torch.from_numpy(x).to(dtype).to(torch.float64).numpy()
    return (back == x) | (np.isnan(x) & np.isnan(back))


# -- truths numpy can round: the nearest float64 and the side the exact value lies on ---------------
def split(value) -> tuple[float, int]:
    """``(hi, side)``: ``hi`` the float64 nearest ``value`` (``round_to``), ``side``
    the sign of ``value - hi`` (0 when exact, non-finite, or a NaN).

    The pair rounds exactly to every narrower format (``round_split``): a
    format's midpoint is a float64, so rounding ``hi`` instead of ``value``
    differs only when ``hi`` *is* a midpoint, and then ``side`` breaks the tie.

    Example:
        >>> with mpmath.workprec(80):
        ...     split(mpmath.mpf(1) + mpmath.mpf(2) ** -60)
        (1.0, 1)
    """
    if value is None:
        return math.nan, 0
    hi = round_to(value, FORMATS[torch.float64])
    if not math.isfinite(hi) or not mpmath.isfinite(value):
        return hi, 0
    # The exact difference: mpf arithmetic at a precision that holds both.
    diff = mpmath.fsub(value, hi, exact=True)
    return hi, (diff > 0) - (diff < 0)


def round_split(hi: np.ndarray, side: np.ndarray, f: Format) -> np.ndarray:
    """Round exact values given as ``split`` pairs to ``f``, elementwise: the
    same floats ``round_to`` gives for the values themselves (ties to even,
    overflow to ±inf, underflow through the subnormals to ±0).

    Example:
        >>> round_split(np.array([1 + 2.0 ** -11]), np.array([1]), fmt(torch.float16)).tolist()
        [1.0009765625]
    """
    hi = np.asarray(hi, dtype=np.float64)
    if f.width == 64:
        return hi.copy()
    side = np.asarray(side, dtype=np.int64)
    finite = np.isfinite(hi) & (hi != 0)
    m, e = np.frexp(np.where(finite, np.abs(hi), 1.0))      # |hi| = m * 2**e, m in [0.5, 1)
    e = e.astype(np.int64)
    man = (m * 2.0 ** 53).astype(np.int64)                  # 53-bit integer significand
    low = e - 53                                            # |hi| = man * 2**low
    quantum = np.maximum(e - 1, f.emin) - f.precision + 1
    shift = np.clip(quantum - low, 0, 62)
    q = man >> shift
    rest = man - (q << shift)
    half = np.where(shift > 0, np.left_shift(1, np.maximum(shift - 1, 0)), 1 << 62)
    up = (rest > half) | ((rest == half) & ((side * np.sign(hi) > 0) | ((side == 0) & ((q & 1) == 1))))
    q = q + up
    with np.errstate(over="ignore"):
        magnitude = np.ldexp(q.astype(np.float64), np.where(shift > 0, quantum, low))
    magnitude = np.where(magnitude > f.max, np.inf, magnitude)
    return np.where(finite, np.copysign(magnitude, hi), hi)


def ulp_of(x: np.ndarray, f: Format) -> np.ndarray:
    """``Format.ulp`` elementwise."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    finite = np.isfinite(x) & (x != 0)
    _, e = np.frexp(np.where(finite, x, 1.0))
    return np.where(finite, np.exp2(np.maximum(e - 1, f.emin) - f.precision + 1), f.subnormal)
