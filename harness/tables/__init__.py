"""Tables: what many certifications say together, as pages and reports.

The accuracy tables of torch's autograd (``accuracy_table``, run as
``python -m harness.tables.accuracy_table``), their compiled findings
(``compiled_findings``), their hand checks in plain mpmath (``hand`` for
elementwise ops, ``hand_structured`` for structured ones) and the coverage of
torch's OpInfo database (``coverage``); the cost of ``torch.compile``
(``compile_cost``); ``--certify-report``'s pages and maps
(``certification_report``); the benchmarks' forwards and sizes
(``benchmarking``). Entry points: ``accuracy_table``, ``certification_report``.
"""
