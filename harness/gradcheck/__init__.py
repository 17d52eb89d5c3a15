"""Gradcheck: ``torch.autograd.gradcheck``'s interface over the harness.

``gradcheck.gradcheck`` and ``gradcheck.gradgradcheck`` (exported as
``harness.gradcheck`` and ``harness.gradgradcheck``) turn a call of torch's
signature into a ``Case`` (``cases``) and certify it; ``torch_compat`` keeps
what they share with torch's (its error type, keywords and structural checks);
``tally`` counts how each call was judged, for the pytest session's last line.
"""
