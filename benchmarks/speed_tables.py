"""The tables of docs/speed.md that come from committed benchmark results, written to figures/ and pasted into the
page by its marker blocks (tests/test_readme.py checks both):

  figures/data_scale.md    benchmarks/results/data_scale_cpu.json   (bench_data_scale.py)
  figures/trainer_loop.md  benchmarks/results/trainer_loop_cpu.json  (bench_train.py)
  figures/cpu_kinds.md     benchmarks/results/cpu_kinds.json        (cpu_kinds.py)
  figures/compile.md       benchmarks/results/compile_cpu.json      (bench_compile.py)

  python benchmarks/speed_tables.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
STAGE_NAMES = {
    "read_and_check": "read the file, check it, split it",
    "fingerprint": "fingerprint (the run's identity)",
    "tokenize": "tokenize (BiLSTM 256 and BERT 512 tokens), cache cold",
    "tokenize_cached": "tokenize again: cache hits",
    "overview": "notebook 01's tables",
    "tfidf_fit": "TF-IDF + SVM member: fit (notebook 04)",
    "tfidf_predict": "TF-IDF + SVM member: test split",
}
TRAINER_ROWS = {
    "trainer-seed": "Trainer, the seed's recipe: pad to 512, 16 × 2, fp32",
    "trainer-best": "Trainer at its best: `group_by_length` sampler, dynamic padding, bf16, 32 × 1",
    "trainer-our-batches": "Trainer fed our batches: our sampler and collator, bf16, 32 × 1",
    "ours-seed": "ours, the seed's recipe: pad to 512, 16 × 2, fp32",
    "ours": "ours as the profile runs it: length-grouped batches, dynamic padding, bf16, 32 × 1",
}


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _cell(stage: dict) -> str:
    return f"{stage['seconds']:,.1f} s, {stage['peak_rss_gib']:.1f} GiB"


def data_scale_markdown(result: dict) -> str:
    sizes = result["sizes"]
    head = "| stage | " + " | ".join(f"{int(n):,} documents ({s['file_mib']:,.0f} MiB)" for n, s in sizes.items())
    lines = [head + " |", "|---" * (len(sizes) + 1) + "|"]
    for stage, name in STAGE_NAMES.items():
        lines.append(f"| {name} | " + " | ".join(_cell(s["stages"][stage]) for s in sizes.values()) + " |")
    lines.append("| **before training** (read … notebook 01) | " + " | ".join(
        f"**{s['before_training_seconds']:,.0f} s, {s['before_training_peak_gib']:.1f} GiB**"
        for s in sizes.values()) + " |")
    for kind, name in (("bert", "BERT"), ("bilstm", "BiLSTM")):
        if all("epoch_seconds_extrapolated" in s for s in sizes.values()):
            lines.append(f"| one {name} training epoch (extrapolated) | " + " | ".join(
                _duration(s["epoch_seconds_extrapolated"][kind]) for s in sizes.values()) + " |")
    m = result["machine"]
    lines.append("")
    lines.append(f"Machine: {m['cpu']}, bf16 path {m['bf16_path'] or 'none'}, {m['memory_gib']:.0f} GiB. Peak memory: "
                 "the process's largest resident set during the stage.")
    if "predict_docs_per_s" in result:
        p, t = result["predict_docs_per_s"], result["trained_tokens_per_s"]
        lines.append(f"`textlab predict` on generated documents: BERT {p['bert']:.1f}, BiLSTM {p['bilstm']:.1f}, "
                     f"the chosen ensemble {p['ensemble']:.1f} documents/s (fp32). Epochs extrapolated from the real "
                     f"tokens of the training split at {t['bert']:,.0f} (BERT) and {t['bilstm']:,.0f} (BiLSTM) "
                     f"training tokens/s, the first seed's epochs in `{t['run']}`.")
    return "\n".join(lines) + "\n"


def trainer_markdown(result: dict) -> str:
    rows = result["results"]
    lines = ["| row | what it is | docs/s | real tokens/s | s/epoch | vs trainer-best | vs trainer-our-batches |",
             "|---|---|---|---|---|---|---|"]
    for name, what in TRAINER_ROWS.items():
        if name not in rows:
            continue
        r = rows[name]
        vs = [f"×{r[k]:.2f}" if k in r else "" for k in ("speedup_vs_trainer-best", "speedup_vs_trainer-our-batches")]
        lines.append(f"| {name} | {what} | {r['docs_per_s']:.2f} | {r['tokens_per_s']:,.0f} | {r['s_per_epoch']:,.0f} "
                     f"| {vs[0]} | {vs[1]} |")
    pad = result.get("epoch_padding")
    lines.append("")
    lines.append(f"Machine: {result['device']}, bf16 path {result.get('bf16_path') or 'none'}; "
                 f"{result['steps']} optimizer steps per row, the median of {result.get('repeats', 1)} alternated "
                 "repeats.")
    if pad:
        lines.append("Padding over a whole training epoch (pad tokens per real token): ours "
                     f"{100 * pad['ours']:.1f} %, the Trainer's `group_by_length` sampler "
                     f"{100 * pad['trainer_length_grouped']:.1f} %, random batches {100 * pad['random']:.1f} % "
                     f"(padded to 512: {100 * pad['random_to_max_length']:.0f} %).")
    return "\n".join(lines) + "\n"


def cpu_kinds_markdown(kinds: dict) -> str:
    names = list(kinds)
    models = list(kinds[names[0]]["test_accuracy"])
    lines = ["| model | " + " | ".join(names) + " | moved |", "|---" * (len(names) + 2) + "|"]
    for model in models:
        accs = [kinds[n]["test_accuracy"].get(model) for n in names]
        label = model
        if model.startswith("ensemble chosen on validation: "):  # each kind may have chosen another variant
            label = "ensemble chosen on validation"
            accs = [next(v for m, v in kinds[n]["test_accuracy"].items() if m.startswith(label)) for n in names]
            chosen = [next(m for m in kinds[n]["test_accuracy"] if m.startswith(label))[len(label) + 2:] for n in names]
            cells = [f"{100 * a:.2f} % ({c})" for a, c in zip(accs, chosen)]
        else:
            cells = [f"{100 * a:.2f} %" for a in accs]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {100 * (accs[-1] - accs[0]):+.2f} |")
    return "\n".join(lines) + "\n"


def compile_markdown(result: dict) -> str:
    rows = result["results"]
    lines = ["| tokens per document | " + " | ".join(rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for key, name in (("eager_s", "s/step, eager"), ("compiled_s", "s/step, `torch.compile` (inductor)")):
        lines.append(f"| {name} | " + " | ".join(f"{r[key]:.2f}" for r in rows.values()) + " |")
    lines.append("| speed-up | " + " | ".join(f"×{r['speedup']:.2f}" for r in rows.values()) + " |")
    lines.append("| first compiled step (compiles) | " + " | ".join(f"{r['compile_s']:.0f} s" for r in rows.values())
                 + " |")
    lines.append("")
    lines.append(f"Machine: {result['device']}, bf16 path {result.get('bf16_path') or 'none'}; batch "
                 f"{result['batch']}, {result['precision']}, the median of {result['repeats']} alternated steps.")
    return "\n".join(lines) + "\n"


TABLES = {"data_scale.md": ("data_scale_cpu.json", data_scale_markdown),
          "trainer_loop.md": ("trainer_loop_cpu.json", trainer_markdown),
          "cpu_kinds.md": ("cpu_kinds.json", cpu_kinds_markdown),
          "compile.md": ("compile_cpu.json", compile_markdown)}


def tables() -> dict[str, str]:
    """{figures/NAME.md: its text} for every table whose committed result exists."""
    out = {}
    for name, (source, make) in TABLES.items():
        path = RESULTS / source
        if path.exists():
            result = json.loads(path.read_text())
            out[name] = make(result)
    return out


def main() -> None:
    for name, text in tables().items():
        (ROOT / "figures" / name).write_text(text)
        print(f"figures/{name}")


if __name__ == "__main__":
    main()
