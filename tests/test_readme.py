"""The README's tables are the generated figures/*.md files, not hand-typed copies."""

import json
from pathlib import Path

import pytest

from textlab.tuning import to_markdown, tuning_table

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("comparison.md", "tuning_bert.md", "tuning_bilstm.md")
RECORDS = ROOT / "benchmarks" / "results" / "tuning"


@pytest.mark.parametrize("name", GENERATED)
def test_readme_table_is_the_generated_one(name):
    generated = ROOT / "figures" / name
    if not generated.exists():
        pytest.skip(f"figures/{name} not generated yet")
    start, end = f"<!-- {name}: start -->", f"<!-- {name}: end -->"
    readme = (ROOT / "README.md").read_text()
    assert start in readme and end in readme, f"README.md lost its {name} markers"
    block = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == generated.read_text().strip(), f"README table differs from figures/{name}: re-paste it"


@pytest.mark.parametrize("kind", ["bert", "bilstm"])
def test_tuning_tables_regenerate_from_the_committed_records(kind):
    records = [json.loads(p.read_text()) for p in sorted(RECORDS.glob(f"{kind}-*.json"))]
    if not records:
        pytest.skip(f"no tuning records for {kind}")
    table = to_markdown(tuning_table(records, "baseline"))
    assert table == (ROOT / "figures" / f"tuning_{kind}.md").read_text(), "run benchmarks/tuning_table.py"

