"""The README's results table is the generated figures/comparison.md, not a hand-typed copy."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- comparison.md: start -->", "<!-- comparison.md: end -->"


def test_readme_table_is_the_generated_one():
    generated = ROOT / "figures" / "comparison.md"
    if not generated.exists():
        pytest.skip("figures/comparison.md not generated yet (make run)")
    readme = (ROOT / "README.md").read_text()
    assert START in readme and END in readme, "README.md lost its comparison-table markers"
    block = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == generated.read_text().strip(), "README table differs from figures/comparison.md: re-paste it"


def test_readme_names_both_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
