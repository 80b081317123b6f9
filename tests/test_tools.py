"""tools/smoke_digest.py: the check that a structural change changed no result must see every change but times."""

import importlib.util
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("smoke_digest", ROOT / "tools" / "smoke_digest.py")
smoke_digest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(smoke_digest)


def _run(folder: Path, accuracy: float, seconds: float, logits: float, key: str = "test_accuracy") -> dict:
    (folder / "seed-42").mkdir(parents=True)
    (folder / "seed-42" / "metrics.json").write_text(json.dumps({key: accuracy, "s_per_epoch": seconds,
                                                                 "history": [{"epoch": 1, "seconds": seconds}]}))
    (folder / "table.csv").write_text(f"model,{key},infer_docs_per_s\nbert,{accuracy},{seconds}\n")
    np.save(folder / "seed-42" / "logits_test.npy", np.full((2, 3), logits, dtype=np.float32))
    (folder / "run.json").write_text(json.dumps({"started": seconds}))
    return smoke_digest.digest(folder)


def test_digests_differ_in_results_and_never_in_times(tmp_path, monkeypatch):
    base = _run(tmp_path / "a", 0.5, 1.0, 0.25)
    assert sorted(base) == ["seed-42/logits_test.npy", "seed-42/metrics.json", "table.csv"]  # run.json: times only
    assert _run(tmp_path / "b", 0.5, 7.0, 0.25) == base  # other times: the same digest
    other = _run(tmp_path / "c", 0.5, 1.0, 0.26)  # other logits
    assert [k for k in base if base[k] != other[k]] == ["seed-42/logits_test.npy"]
    other = _run(tmp_path / "d", 0.51, 1.0, 0.25)  # another score
    assert [k for k in base if base[k] != other[k]] == ["seed-42/metrics.json", "table.csv"]
    renamed = _run(tmp_path / "e", 0.5, 1.0, 0.25, key="test_acc")  # a key renamed on purpose
    assert renamed != base
    monkeypatch.setattr(smoke_digest, "RENAMED", {"test_acc": "test_accuracy"})
    assert smoke_digest.digest(tmp_path / "e") == base
