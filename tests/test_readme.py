"""README.md and docs/*.md: their tables are the generated figures/*.md files (not hand-typed copies), the generated
files are what the code writes from the committed records, and the README stays a short page."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from textlab import compare, display
from textlab.tuning import tuning_markdown, tuning_table

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RECORDS = ROOT / "benchmarks" / "results" / "tuning"
MARKER = re.compile(r"<!-- (\S+\.md): start -->\n(.*?)<!-- \1: end -->", re.S)
# Where each generated table must appear.
REQUIRED = {"headline.md": ["README.md"], "comparison.md": ["results.md"],
            "conclusions.md": ["README.md", "results.md"],
            "tuning_bert.md": ["tuning.md"], "tuning_bilstm.md": ["tuning.md"]}


def _blocks():
    return [(page, name, block) for page in PAGES for name, block in MARKER.findall(page.read_text())]


@pytest.mark.parametrize("page,name,block", _blocks(), ids=lambda v: v.name if isinstance(v, Path) else None)
def test_every_marked_table_is_the_generated_one(page, name, block):
    generated = ROOT / "figures" / name
    assert generated.exists(), f"{page.name} includes figures/{name}, which does not exist"
    assert block.strip() == generated.read_text().strip(), \
        f"{page.name}: table differs from figures/{name}: re-paste it"


@pytest.mark.parametrize("name,page", [(n, p) for n, pages in REQUIRED.items() for p in pages])
def test_generated_tables_are_included(name, page):
    assert (name, page) in {(n, p.name) for p, n, _ in _blocks()}, f"{page} lost its {name} markers"


def test_every_start_marker_has_its_end():
    for page in PAGES:
        text = page.read_text()
        starts = re.findall(r"<!-- (\S+\.md): start -->", text)
        assert len(starts) == len(MARKER.findall(text)), f"{page.name}: a marker block is not closed"


def test_comparison_tables_are_what_the_code_writes_from_the_committed_csv():
    table = compare.typed(pd.read_csv(ROOT / "figures" / "comparison.csv"))
    assert list(table.columns) == compare.COLUMNS
    assert display.to_markdown(table) == (ROOT / "figures" / "comparison.md").read_text()
    assert compare.headline_markdown(table) == (ROOT / "figures" / "headline.md").read_text()
    assert table.to_csv(index=False) == (ROOT / "figures" / "comparison.csv").read_text()


@pytest.mark.parametrize("kind", ["bert", "bilstm"])
def test_tuning_tables_regenerate_from_the_committed_records(kind):
    records = [json.loads(p.read_text()) for p in sorted(RECORDS.glob(f"{kind}-*.json"))]
    if not records:
        pytest.skip(f"no tuning records for {kind}")
    table = tuning_markdown(tuning_table(records, "baseline"))
    assert table == (ROOT / "figures" / f"tuning_{kind}.md").read_text(), "run benchmarks/tuning_table.py"


def test_readme_is_a_short_page_with_the_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make run" in readme and "make test" in readme and "make lab" in readme
    assert readme.index("<!-- headline.md: start -->") < readme.index("## Two commands")  # the result first


def test_links_and_images_resolve():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_make_lab_uses_the_environment_of_make_run():
    makefile = (ROOT / "Makefile").read_text()
    lab = re.search(r"^lab:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "jupyter lab --notebook-dir=notebooks" in lab and "TEXTLAB_PROFILE=$(PROFILE)" in lab
    assert "export TEXTLAB_20NG" in makefile  # the data is found the same way for every target


def test_speed_tables_regenerate_from_the_committed_benchmark_results():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import speed_tables

    made = speed_tables.tables()
    assert "data_scale.md" in made  # the own-data benchmark's result is committed
    for name, text in made.items():
        assert text == (ROOT / "figures" / name).read_text(), "run benchmarks/speed_tables.py"
