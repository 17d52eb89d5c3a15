"""Inputs: where the points come from.

The first wing of the pipeline (inputs -> claims -> truth -> judging -> tables):
the formats (``floats``), the input domains (``domains``), the extreme-value grids
of elementwise cases (``grids``), the named patterns of structured inputs
(``patterns``, drawn by ``pattern_pictures``) and of square matrices
(``matrix_patterns``, a case's ``grid=``), the sparsity of a Jacobian
(``structure``), and the samples a certification runs on, with their fixed
cotangent and tangent (``samples``). Nothing here imports another wing.
"""
