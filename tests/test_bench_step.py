import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_step  # noqa: E402


def test_step_benchmark_times_both_attention_dropouts_per_length(tmp_path):
    out = tmp_path / "step.json"
    bench_step.main(["--backbone", "tiny", "--lengths", "16", "32", "--batch", "2", "--repeats", "1",
                     "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["backbone"] == "tiny" and result["batch"] == 2
    cells = result["seconds_per_step"]
    assert set(cells) == {"16", "32"}
    for r in cells.values():
        assert r["attention_dropout=0.1"] > 0 and r["attention_dropout=0.0"] > 0 and r["speedup"] > 0
