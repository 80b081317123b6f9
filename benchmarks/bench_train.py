"""Training speed, side by side in one process: our loop (textlab.train.fit) vs transformers.Trainer.

Same model, same 20 Newsgroups training documents, same effective batch. Configurations:
  trainer-seed   Trainer as the seed ran it: padding to max_length, micro-batch 16 x 2, fp16 on GPU (fp32 on CPU)
  trainer-bf16   the same Trainer with bf16 (to separate precision from batching)
  ours-seed      our loop with the seed's settings (padding to max_length, same precision as trainer-seed)
  ours-grouped-seedprec  our loop, length-grouped dynamic padding, the seed's precision (batching alone)
  ours           our loop as the profile runs it: length-grouped dynamic padding, bf16 where supported
  ours-compiled  ours + torch.compile (inductor), batches padded to 4 length buckets (GPU; on CPU only with --only)

Reports documents/s, real (non-pad) tokens/s, the implied seconds per epoch over the train split, and each
configuration's speed-up over trainer-seed. Usage:
  python benchmarks/bench_train.py                        # CPU, embedded MiniLM (the cpu profile's backbone)
  python benchmarks/bench_train.py --backbone bert-base-uncased-random --steps 30   # on a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from textlab import pipeline
from textlab.config import get_profile
from textlab.train import fit, resolve_precision


def bench_trainer(prep, profile, steps: int, precision: str, out: Path) -> dict:
    torch.manual_seed(0)
    model = pipeline.build_model("bert", prep.backbone, len(prep.label_names), profile)
    ds = prep.data["train"].shuffle(seed=0)
    ds = ds.select(range(min(len(ds), steps * 32)))
    lengths = list(ds["length"])
    ds = ds.select_columns(["input_ids", "labels"])
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=16, gradient_accumulation_steps=2, max_steps=steps,
        learning_rate=2e-5, fp16=precision == "fp16", bf16=precision == "bf16", use_cpu=not torch.cuda.is_available(),
        save_strategy="no", report_to=[], logging_strategy="no", dataloader_num_workers=0, disable_tqdm=True,
    )
    collator = DataCollatorWithPadding(prep.tokenizer, padding="max_length", max_length=profile.max_length)
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=collator)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    docs = steps * 32
    tokens = sum(lengths[:docs])
    return {"seconds": seconds, "docs": docs, "tokens": tokens}


def bench_ours(prep, profile, steps: int, precision: str, length_grouped: bool, out: Path, kind: str = "bert",
               compile: str = "") -> dict:
    torch.manual_seed(0)
    model = pipeline.build_model(kind, prep.backbone, len(prep.label_names), profile)
    cfg = dataclasses.replace(getattr(profile, kind), batch_size=16, grad_accum=2, max_steps=steps, epochs=1,
                              precision=precision, length_grouped=length_grouped, compile=compile)
    data = {"train": prep.data["train"], "validation": prep.data["validation"].select(range(8))}
    result = fit(model, data, prep.tokenizer, cfg, out, meta=pipeline.model_meta(kind, prep), resume=False)
    h = result.history[0]
    docs = steps * 32
    return {"seconds": h["seconds"], "docs": docs, "tokens": h["tokens_per_s"] * h["seconds"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="minilm", help="minilm | bert-base-uncased-random | tiny")
    parser.add_argument("--model", default="bert", choices=["bert", "bilstm"],
                        help="bilstm: our loop only, padded to max_length vs length-grouped (no Trainer rows)")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps (x 32 documents) per configuration")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed run first (kernel selection, JIT)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--only", nargs="+", default=None, help="subset of configurations")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    hf_logging.set_verbosity_error()

    # every model at --max-length (the cpu profile lets BERT read more: its own max_length would pad ours-seed further)
    profile = get_profile("cpu", backbone=args.backbone, max_length=args.max_length, bert__max_length=0,
                          bilstm__max_length=0)
    prep = pipeline.prepare(profile)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    seed_precision = "fp16" if device == "cuda" else "fp32"
    best = resolve_precision("auto", device)
    configs = {
        "trainer-seed": lambda out, steps: bench_trainer(prep, profile, steps, seed_precision, out),
        "trainer-bf16": lambda out, steps: bench_trainer(prep, profile, steps, "bf16", out),
        "ours-seed": lambda out, steps: bench_ours(prep, profile, steps, seed_precision, False, out, args.model),
        "ours-grouped-seedprec": lambda out, steps: bench_ours(prep, profile, steps, seed_precision, True, out, args.model),
        "ours": lambda out, steps: bench_ours(prep, profile, steps, best, True, out, args.model),
        # torch.compile (inductor) with batches padded to 4 length buckets; the untimed warm-up run compiles
        # the shapes it meets, the timed run compiles any bucket not met yet (included in its time)
        "ours-compiled": lambda out, steps: bench_ours(prep, profile, steps, best, True, out, args.model, "inductor"),
    }
    if device == "cpu" and not (args.only and "ours-compiled" in args.only):
        del configs["ours-compiled"]  # minutes of compilation on a 2-core CPU: ask for it with --only
    if args.model != "bert":
        configs = {k: v for k, v in configs.items() if k.startswith("ours")}
    n_train = len(prep.data["train"])
    rows = {}
    for name, run in configs.items():
        if args.only and name not in args.only:
            continue
        if args.warmup_steps:
            with tempfile.TemporaryDirectory() as tmp:
                run(Path(tmp), args.warmup_steps)
        with tempfile.TemporaryDirectory() as tmp:
            r = run(Path(tmp), args.steps)
        r.update(docs_per_s=r["docs"] / r["seconds"], tokens_per_s=r["tokens"] / r["seconds"])
        r["s_per_epoch"] = n_train / r["docs_per_s"]
        rows[name] = r
        print(f"{name:<22} {r['docs_per_s']:8.2f} docs/s {r['tokens_per_s']:9.0f} tokens/s "
              f"{r['s_per_epoch']:9.1f} s/epoch", flush=True)
    base = rows.get("trainer-seed") or rows.get("ours-seed")
    if base:
        for name, r in rows.items():
            r["speedup"] = base["s_per_epoch"] / r["s_per_epoch"]
            print(f"{name:<22} x{r['speedup']:.2f} vs {'trainer-seed' if 'trainer-seed' in rows else 'ours-seed'}")
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    result = {"device": name, "model": args.model, "backbone": args.backbone, "max_length": args.max_length, "steps": args.steps,
              "train_docs": n_train, "results": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
