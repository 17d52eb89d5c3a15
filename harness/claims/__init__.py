"""Claims: what the implementation under test says, by running it.

The forward and the claimed backward, checked for type, shape, dtype and device
(``claimed``: also the double backward's Hessian-vector product and the JVP of
forward mode); one batch standing in for many calls where it is proven the same
call (``batched_claims``); torch.compile'd twins and what Inductor made of them
(``execution``); and the finite differences of the implementation's own forward
(``finite_differences``, taken lazily by ``estimates``). Entry points:
``claimed``, ``estimates``, ``execution``. This is the only wing that calls the
code under test.
"""
