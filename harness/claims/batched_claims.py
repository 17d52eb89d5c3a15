"""The claims of a structured grid in one call, where that is the same call.

A structured case's forward takes one point: tensors of the case's shapes.
Most forwards broadcast over a leading dimension, and then B points stacked
along it give the B outputs stacked, and one backward the B gradients: one
call of torch instead of B (on the shipped cases, a warm run's 27,000 forward
and backward calls were half of its time). A forward that does not broadcast
(a loss that reduces every dimension) is mapped over the batch by
``torch.func.vmap``.

A certificate must describe the call the user makes, and kernels may compute
a batch otherwise than one point (another reduction order, a vectorised
path). So a batch stands in only where every row is, bit for bit, what the
one-point call returns:

- the first time (a cold cache), every point is also called on its own and
  compared; the cache records the digest of the batch's rows, or that they
  differ;
- a later run calls the batch alone, and keeps its rows only if their digest
  is the one recorded under the same key: the case's name, the fingerprint of
  its forward and backward (their code and what they call, a
  ``torch.autograd.Function``'s methods included), torch's version, the dtype,
  the device and the points themselves;
- anything else (another digest, rows that differed, a forward that does not
  broadcast or raises on a batch) is one call per point, as before.

Compiled forwards (``harness.claims.execution``) are always called point by point: a
batch is another graph.

Where the claims' batch was proven the same call, the finite differences of a
point's forward (``certify._finite_differences``) call its stencil as one
batch too; their inputs lie a few units in the last place from the grid's.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Callable

import numpy as np
import torch

from ..truth.cache import TruthCache, code_fingerprint

#: Bump when what a record means changes (its batch ways, what its digest covers).
SCHEME = "batched claims 3 (broadcast, vmap; digests of whole batches)"
#: Points per batched call.
BATCH_ROWS = 1024
_DIFFERS = b"differs"


def claim_all(samples: list, one: Callable, batches: dict[str, Callable], identity: list[str],
              cache: TruthCache) -> tuple[str, str | None]:
    """Fill every sample's claims: by ``one(sample)`` (the one-point call,
    which reports a broken case), or from the rows of a batch call where that
    is proven the same. ``batches``: the ways to call a batch, tried in order,
    each ``(arrays, rows) -> (output, grads, unstable, cotangent)`` stacked
    (a forward that broadcasts; ``torch.func.vmap`` of one that does not).
    ``identity``: what the batch's record is keyed by besides the points.

    Returns how they were called: "batched", "checked" (one by one and as a
    batch, found the same, and recorded), "one by one", or "mixed" (groups of
    points of one shape each went their own way); and the batch way used (None
    where none, or not one for all)."""
    groups: dict = {}
    for sample in samples:
        groups.setdefault(tuple(a.shape for a in sample.arrays), []).append(sample)
    ways = [_claim_group(group, one, batches, identity, cache) for group in groups.values()]
    how = {way for way, _ in ways}
    modes = {mode for _, mode in ways}
    return (how.pop() if len(how) == 1 else "mixed"), (modes.pop() if len(modes) == 1 else None)


def _claim_group(samples: list, one: Callable, batches: dict[str, Callable], identity: list[str],
                 cache: TruthCache) -> tuple[str, str | None]:
    """``claim_all`` of points of one shape."""
    if len(samples) < 2:
        for sample in samples:
            one(sample)
        return "one by one", None
    one(samples[0])   # a broken case is reported as the user's one-point call shows it
    chunks = [tuple(np.stack([s.arrays[k] for s in samples[start:start + BATCH_ROWS]])
                    for k in range(len(samples[0].arrays)))
              for start in range(0, len(samples), BATCH_ROWS)]
    key = _key(chunks, identity)
    record = cache.get_many([key]).get(key)
    if record is not None and record != _DIFFERS:
        mode, _, digest = record.decode(errors="replace").partition(":")
        called = _called(chunks, batches[mode]) if mode in batches else None
        if called is not None and digest == called[1]:
            _fill(samples[1:], called[0][1:])
            return "batched", mode
    for sample in samples[1:]:
        one(sample)
    if record == _DIFFERS:
        return "one by one", None
    for mode, batch in batches.items():
        called = _called(chunks, batch)
        if called is not None and all(_same(s, r) for s, r in zip(samples, called[0])):
            cache.put_many({key: f"{mode}:{called[1]}".encode()})
            return "checked", mode
    cache.put_many({key: _DIFFERS})
    return "one by one", None


def _called(chunks: list, batch: Callable) -> tuple[list, str] | None:
    """The batch's claims split into rows, one per point, and their digest;
    None where the forward does not take a batch."""
    rows, digest = [], hashlib.sha256()
    for arrays in chunks:
        n = len(arrays[0])
        try:
            # What the code says of a call the user never makes (torch's deprecation of
            # ``.T`` on 3-D tensors) is not the user's to read.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                output, grads, unstable, cotangent = batch(arrays, n)
        except Exception:   # noqa: BLE001 - a forward that does not broadcast is called point by point
            return None
        if any(g.shape != a.shape for g, a in zip(grads, arrays)):
            return None
        for a in (output, *grads, *unstable, cotangent):
            digest.update(_bits(a))
        rows += [(output[j], tuple(g[j] for g in grads), tuple(u[j] for u in unstable), cotangent[j])
                 for j in range(n)]
    return rows, digest.hexdigest()


def _fill(samples: list, rows: list) -> None:
    for sample, (output, grads, unstable, cotangent) in zip(samples, rows):
        sample.output, sample.grads, sample.unstable = output, grads, unstable
        sample.cotangent = np.array(cotangent)


def _bits(a) -> bytes:
    """The float64 bits of ``a`` (exact for every dtype judged), NaNs as one."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    return np.where(np.isnan(a), np.nan, a).tobytes() + bytes(str(a.shape), "ascii")


def _same(sample, row) -> bool:
    output, grads, unstable, cotangent = row
    mine = (sample.output, *sample.grads, *sample.unstable, sample.cotangent)
    theirs = (output, *grads, *unstable, cotangent)
    return all(_bits(a) == _bits(b) for a, b in zip(mine, theirs))


def _key(chunks: list, identity: list[str]) -> str:
    h = hashlib.sha256("\n".join([SCHEME, torch.__version__, *identity]).encode())
    for arrays in chunks:
        for a in arrays:
            h.update(_bits(a))
    return "batch:" + h.hexdigest()


def identity_of(case, dtype, device) -> list[str]:
    """What a batch's record is keyed by besides the points."""
    parts = [case.name, str(dtype), str(device), code_fingerprint(case.forward)]
    if case.backward is not None:
        parts.append(code_fingerprint(case.backward))
    return parts
