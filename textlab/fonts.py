"""Fonts for figures: label names in any script drawn where an installed font has the glyphs, escaped where none has."""

from __future__ import annotations

import functools
import logging
import warnings

import matplotlib.pyplot as plt
from matplotlib import font_manager

from .errors import PlotWarning

# Label names in other scripts: matplotlib falls back glyph by glyph along font.family, so each of these that is
# installed joins DejaVu Sans (matplotlib's own: Latin, Greek, Cyrillic, many symbols and monochrome emoticons).
# None ships with matplotlib; `apt install fonts-noto-cjk` (or fonts-wqy-zenhei) adds CJK. Without one,
# drawable_labels() warns and writes the characters no font has as escapes.
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Droid Sans Fallback", "Noto Sans",
                  "Noto Sans Symbols2", "Symbola")


@functools.cache
def _fonts() -> tuple[tuple[str, ...], frozenset[int]]:
    """The font.family figures use (DejaVu Sans, then the installed FALLBACK_FONTS) and the code points they draw."""
    installed = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    family = ("DejaVu Sans", *(name for name in FALLBACK_FONTS if name in installed))
    covered = set()
    for name in family:
        path = installed.get(name) or font_manager.findfont(name)
        covered |= set(font_manager.get_font(path).get_charmap())
    return family, frozenset(covered)


def _not_weight_substitution(record) -> bool:
    # A CJK font whose only weight is "medium" (WenQuanYi Zen Hei) is used at that weight, as it should be, with one
    # "findfont: Failed to find font weight normal ..., now using 500" line per figure: not worth a reader's eye.
    return not str(record.msg).startswith("findfont: Failed to find font weight")


def use_fallback_fonts() -> None:
    """Draw every figure with the installed fallback fonts (called on import)."""
    plt.rcParams["font.family"] = list(_fonts()[0])
    logging.getLogger("matplotlib.font_manager").addFilter(_not_weight_substitution)


def drawable_labels(names) -> list[str]:
    """Label names as a figure can draw them: unchanged where the fonts have every character, else with each
    missing character written as its escape (e.g. \\u4e2d), and one PlotWarning naming those labels."""
    covered = _fonts()[1]
    names = [str(n) for n in names]
    safe = ["".join(c if c.isspace() or ord(c) in covered else c.encode("ascii", "backslashreplace").decode()
                    for c in n) for n in names]
    changed = [(n, s) for n, s in zip(names, safe) if n != s]
    if changed:
        shown = ", ".join(f"{n!r} as {s!r}" for n, s in changed[:5]) + (", ..." if len(changed) > 5 else "")
        warnings.warn(f"{len(changed)} label name(s) have characters no installed font draws; the figures write "
                      f"them as escapes: {shown}. Install a font that has them (e.g. `apt install fonts-noto-cjk`) "
                      "to see them as written.", PlotWarning, stacklevel=3)
    return safe


use_fallback_fonts()
