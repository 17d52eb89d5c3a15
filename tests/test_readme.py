"""The README's own promises: the "Adding a case" examples (the README's, and the
structured one it links to in docs/patterns.md) certify as their cases claim, and
the quick start runs what CI runs.

The example is certified in float16 and bfloat16 on the coarsest grid (about
2 s in all): the 16-bit formats are where a cancelling formula shows first;
float64 alone would take ten times as long (`pytest cases/logcosh.py` on a
copy of the example runs all four).
"""

import re
from pathlib import Path

import pytest
import torch

from harness.certify import certify, check
from harness.judging.expectations import certified

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


PATTERNS = (ROOT / "docs" / "patterns.md").read_text()


def section(title: str, text: str = README, where: str = "README.md") -> str:
    """The text under ``## title``, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"{where} has no section {title!r}"
    return match.group(1)


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


@pytest.fixture(scope="module")
def example_cases():
    """The CASES of every example file in the section, in order."""
    cases = []
    examples = [(code, "README.md (Adding a case)") for code in code_blocks(section("Adding a case"), "python")]
    examples += [(code, "docs/patterns.md (A structured case, written out)") for code in
                 code_blocks(section("A structured case, written out", PATTERNS, "docs/patterns.md"), "python")]
    for k, (code, where) in enumerate(examples):
        namespace = {"__name__": f"readme_example_{k}"}
        exec(compile(code, f"{where}, example {k + 1}", "exec"), namespace)
        cases += namespace["CASES"]
    return cases


def test_the_examples_open_with_a_case_that_claims_to_be_certified(example_cases):
    assert len(example_cases) == 3 and example_cases[0].expect == certified()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_the_example_certifies_as_its_cases_claim(example_cases, dtype):
    for case in example_cases:
        report = certify(case, dtype, grid_size=1)
        problem = check(case, report, dtype)
        assert problem is None, f"{case.name}: {problem}\n{report}"


def test_the_quick_start_is_what_ci_runs():
    """Two commands, CI's first two; whatever CI runs after them is a command
    the README shows too (the torch ops sweep)."""
    (block,) = code_blocks(section("Quick start"), "bash")
    commands = [line for line in block.splitlines() if line.strip()]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert len(commands) == 2 and ci[:2] == commands
    shown = {line for code in code_blocks(README, "bash") for line in code.splitlines()}
    assert set(ci[2:]) <= shown
