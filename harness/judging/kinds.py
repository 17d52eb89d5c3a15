"""The defects the harness names, worst first (a point shows its worst kind)."""

KINDS = {
    # First: the quantity has no number at all (forward mode without a rule,
    # a backward that cannot be differentiated again).
    "unsupported": "the derivative could not be computed: forward mode or double backward raised",
    "non-finite": "NaN or inf where the truth is finite",
    # Not a truth's verdict: a policy's (``indeterminate="finite"``), where no truth exists.
    "indeterminate": "NaN or inf at ±inf inputs where the limit depends on the path (policy indeterminate='finite')",
    "finite-vs-inf": "finite where the truth rounds to inf",
    "wrong-sign": "the sign differs from the truth's",
    "silent-zero": "exactly zero where the truth is not",
    # Before lost-digits: a backward without one answer is not judged by the luck of its first.
    "non-deterministic": "a second backward call on the same inputs gives another number",
    "lost-digits": "more bits of error than the budget allows",
    "inconsistent": "the backward disagrees with finite differences of the forward",
    "nan-swallowed": "a NaN input gives a number",
    # Last: the mildest, the one kind a format's own range explains. Any other
    # kind at the same entry outranks it; whether it fails is a per-dtype policy
    # (``tolerance.BUDGET``), not a severity.
    "underflow": "flushed to zero: the truth is below the smallest normal and the error within it",
}

SEVERITY = {kind: rank for rank, kind in enumerate(KINDS)}
#: Kinds as small integers for whole-grid masks: the code is the severity rank.
CODE = SEVERITY
KIND_NAMES = list(KINDS)
