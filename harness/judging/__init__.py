"""Judging: claims against truths, in bits, and the report.

The kinds of defect (``kinds``), the budgets (``tolerance``), the verdict of an
entry against its truth or its finite differences (``verdict``), the quantities
of a certification laid out flat (``quantities``), their judgement into a report
(``judge``: failures, regions, counts, measures), what a case expects
(``expectations``), and the report itself (``report``). Entry point: ``judge``.
Judging never imports the claims wing: the finite differences it asks for come in
as a lazy object made there.
"""
