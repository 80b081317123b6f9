"""How textlab shows what it computed: table cells, markdown tables, notebook tables and records, readable names.
No computation here: compare, seeds and the notebooks hand their numbers in."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .kinds import REGISTRY

# Backbone keys of textlab.backbones as a reader knows the models.
BACKBONE_NAMES = {"minilm": "MiniLM-L6-H384", "bert-base-uncased": "bert-base-uncased", "tiny": "tiny random BERT",
                  "bert-base-uncased-random": "bert-base-uncased (random weights)"}


# Raw keys of models and ensemble variants (textlab.ensemble) as a reader names them.
READABLE = {**{k: kind.short for k, kind in REGISTRY.items() if kind.member},
            "prob-average": "probability average", "temp-average": "temperature-scaled average",
            "weighted-average": "weighted average", "meta-MLP": "meta-MLP", "seed-exact": "seed-exact"}



def readable(name: str) -> str:
    """"weighted-average (bert+bilstm+tfidf)" -> "weighted average (BERT + BiLSTM + TF-IDF + SVM)"; a seed's variant
    in a run's table keeps its suffix: "... [seed 42]"."""
    name, _, seed = name.partition(" [")
    head, _, inside = name.partition(" (")
    pieces = [" + ".join(READABLE.get(m, m) for m in piece.split("+")) for piece in inside.rstrip(")").split(", ")]
    return READABLE.get(head, head) + (f" ({', '.join(pieces)})" if inside else "") + (f" [{seed}" if seed else "")


def backbone_name(key: str) -> str:
    return BACKBONE_NAMES.get(key, key)


def format_seeds(seeds) -> str:
    """"seed 42" or "seeds 42, 43, 44", as notebooks and errors name a run's training seeds."""
    return f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}"


def format_cell(col: str, v, digits: int = 3, whole_from: float = 10) -> str:
    """One cell as the tables show it: accuracy / macro-F1 columns (incl. bootstrap _lo / _hi) as percentages with
    two decimals, other numbers with thousands separators (`digits` significant digits below `whole_from`), missing
    values empty."""
    if pd.api.types.is_scalar(v) and pd.isna(v):
        return ""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return str(v)
    if "accuracy" in col or "macro_f1" in col:
        return f"{100 * v:.2f} %"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return f"{v:,.{digits}g}" if abs(v) < whole_from else f"{v:,.0f}"


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings, the way to_markdown writes it; columns empty in every row dropped."""
    out = pd.DataFrame({c: [format_cell(c, v) for v in table[c]] for c in table.columns}, index=table.index)
    return out.loc[:, (out != "").any()]


def to_markdown(table: pd.DataFrame) -> str:
    """A readable markdown table of formatted cells, unpadded: the committed tables are compared as text (pandas'
    to_markdown pads every column and needs tabulate, not a dependency)."""
    cells = formatted(table)
    header = "| " + " | ".join(cells.columns) + " |\n|" + "---|" * len(cells.columns) + "\n"
    return header + "".join("| " + " | ".join(r) + " |\n" for r in cells.itertuples(index=False))


def display_table(table: pd.DataFrame):
    """A table for a notebook (the comparison table, the bootstrap table, the ensemble's variants): a pandas Styler
    with the markdown's formatting, index hidden, names in full (no truncation), missing values empty."""
    cells = formatted(table)
    return (cells.style.hide(axis="index")
            .set_properties(**{"white-space": "nowrap", "text-align": "right"})
            .set_properties(subset=[cells.columns[0]], **{"text-align": "left"}))  # the names


def display_record(values: dict):
    """A notebook's "Record" cell: one row per key, formatted as the tables are but with 4 significant digits
    below 1,000, as a Styler (no truncated values; the DataFrame is its .data)."""
    table = pd.DataFrame({"value": [format_cell(k, v, 4, 1000) for k, v in values.items()]}, index=list(values))
    return table.style.set_properties(**{"white-space": "nowrap", "text-align": "right"})


def format_duration(seconds: float) -> str:
    """Rounded for a progress line: '40 s', '24 min', '2.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
