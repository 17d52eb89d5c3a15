"""The pytest plugin: ``plugin`` (the ``pytest11`` entry point ``harness``) and
its hook specifications (``hookspecs``).

Modules here import pytest by its absolute name; this package is reachable only
as ``harness.pytest`` and never shadows the real ``pytest``.
"""
