"""Synthetic data for fast, learnable training tests."""

import numpy as np
import pandas as pd

KEYWORDS = {"space": "orbit rocket nasa shuttle launch", "hockey": "puck goalie nhl skate rink",
            "crypto": "cipher key encryption nsa clipper"}
FILLER = "the a of and to in is it that this for on with as was be are by at from".split()


def keyword_csv(path, n=240, seed=0):
    """Three classes told apart by a couple of class keywords among filler words."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = list(KEYWORDS)[i % 3]
        words = list(rng.choice(FILLER, 10)) + list(rng.choice(KEYWORDS[label].split(), 2))
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
