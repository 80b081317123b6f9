"""Test environment for tests/ and the notebooks (nbval): offline, quiet, and never writing into runs/ or figures/."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TEXTLAB_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
# Notebook kernels inherit this: a smoke run in tests writes to a temporary run folder.
os.environ.setdefault("TEXTLAB_RUNS", tempfile.mkdtemp(prefix="textlab-test-runs-"))
_shared = Path(__file__).resolve().parent.parent / "shared" / "data" / "20news-bydate.tar.gz"
if not os.environ.get("TEXTLAB_20NG") and _shared.exists():
    os.environ["TEXTLAB_20NG"] = str(_shared)
