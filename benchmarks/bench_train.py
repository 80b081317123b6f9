"""Training speed, side by side in one process: our loop (textlab.train.fit) vs transformers.Trainer, each at its best.

Same model, same 20 Newsgroups training documents, same effective batch (32), same learning-rate schedule.
Configurations:
  trainer-seed   the seed's recipe in the Trainer, kept as the seed's reference: every batch padded to max_length,
                 micro-batch 16 x 2, fp16 on GPU (fp32 on CPU)
  trainer-best   the Trainer as a user who knows it sets it up: train_sampling_strategy="group_by_length" (its
                 LengthGroupedSampler), DataCollatorWithPadding (dynamic, multiple of 8), bf16 where supported,
                 micro-batch 32 x 1
  ours-seed      our loop with the seed's settings (padding to max_length, 16 x 2, the seed's precision)
  ours           our loop as the profile runs it: length-grouped batches, dynamic padding, bf16 where supported,
                 micro-batch 32 x 1
  ours-packed    (--model bilstm) ours, with the LSTM run over packed sequences as nn.LSTM does it (the
                 implementation before BiLSTMClassifier.bilstm ran each direction densely)
  ours-compiled  ours + torch.compile (inductor), batches padded to 4 length buckets (GPU; on CPU only with --only)

Reports documents/s, real (non-pad) tokens/s, the implied seconds per epoch over the train split, the speed-up over
trainer-best (the claim) and trainer-seed, and each row's training FLOP utilisation: training FLOPs per real token x
real tokens/s / the machine's measured matmul peak in that row's precision (benchmarks/bench_matmul.py, measured in
the same process). How FLOPs are counted: see train_flops_per_token. Usage:
  python benchmarks/bench_train.py --json benchmarks/results/cpu_minilm_bert.json
  python benchmarks/bench_train.py --model bilstm --json benchmarks/results/cpu_minilm_bilstm.json
  python benchmarks/bench_train.py --backbone bert-base-uncased-random --steps 30   # on a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

import bench_matmul
from textlab import factory, pipeline
from textlab.batching import LengthGroupedBatchSampler, make_loader, padded_length
from textlab.config import get_profile
from textlab.hardware import cpu_bf16_path, device_name, resolve_precision
from textlab.train import fit

SEED_BATCH, BEST_BATCH = (16, 2), (32, 1)  # (micro-batch, accumulation): both 32 documents per optimizer step


def train_flops_per_token(model, kind: str, lengths: np.ndarray) -> float:
    """Training FLOPs per real (non-pad) token, counted as matmul FLOPs (2 per multiply-add; nonlinearities, norms
    and softmax are not counted), backward = 2 x forward, padding not counted (it is waste, not work).

    BERT: forward per token = 2 x (weights of every nn.Linear in the encoder) + 4 x layers x d x t for attention
    (QK^T and the weighted sum of V, each 2 x t x d per token per layer, t = the document's own length); the pooler
    and classifier run once per document (< 0.5 % of the total for 20NG lengths) and are left out. Averaged over
    tokens, t becomes sum(t^2) / sum(t) over the training documents (lengths cut at max_length).
    BiLSTM: per token, layer and direction 2 x 4h x (input + h) for the four gates; the frozen embeddings need no
    gradient, so layer 1's input-gradient products (2 x 4h x d per direction) are subtracted from 3 x forward;
    attention pooling and head (per document) left out.
    """
    if kind == "bert":
        cfg = model.config
        linear = sum(m.in_features * m.out_features for m in model.bert.encoder.modules()
                     if isinstance(m, torch.nn.Linear))
        t = float((lengths.astype(np.float64) ** 2).sum() / lengths.sum())
        return 3 * (2 * linear + 4 * cfg.num_hidden_layers * cfg.hidden_size * t)
    lstm = model.lstm
    h, d = lstm.hidden_size, lstm.input_size
    forward = sum(2 * 2 * 4 * h * ((d if layer == 0 else 2 * h) + h) for layer in range(lstm.num_layers))
    return 3 * forward - 2 * (2 * 4 * h * d)


def bench_trainer(prep, profile, steps: int, precision: str, out: Path, best: bool) -> dict:
    torch.manual_seed(0)
    model = factory.build_model("bert", prep.backbone, len(prep.label_names), profile.bert_model)
    cfg = profile.bert
    ds = prep.data["train"].shuffle(seed=0)
    ds = ds.select(range(min(len(ds), steps * 32)))
    lengths = list(ds["length"])
    ds = ds.select_columns(["input_ids", "labels", "length"])
    micro, accum = BEST_BATCH if best else SEED_BATCH
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=micro, gradient_accumulation_steps=accum, max_steps=steps,
        learning_rate=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_ratio, lr_scheduler_type="linear",
        max_grad_norm=cfg.max_grad_norm, fp16=precision == "fp16", bf16=precision == "bf16",
        use_cpu=not torch.cuda.is_available(), save_strategy="no", report_to=[], logging_strategy="no",
        dataloader_num_workers=0, disable_tqdm=True, seed=0,
        train_sampling_strategy="group_by_length" if best else "random", length_column_name="length",
    )
    collator = (DataCollatorWithPadding(prep.tokenizer, pad_to_multiple_of=8) if best else
                DataCollatorWithPadding(prep.tokenizer, padding="max_length", max_length=profile.max_length))
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=collator)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    docs = steps * 32
    return {"seconds": seconds, "docs": docs, "tokens": sum(lengths[:docs])}


class _OurBatchesTrainer(Trainer):
    """The Trainer fed a given DataLoader: our sampler's batches, padded by our collator."""

    def __init__(self, *args, loader, **kw):
        super().__init__(*args, **kw)
        self.loader = loader

    def get_train_dataloader(self):
        return self.accelerator.prepare(self.loader)


def bench_trainer_our_batches(prep, profile, steps: int, precision: str, out: Path) -> dict:
    """The Trainer's loop on exactly the batches `ours` trains on: our length-grouped sampler and collator with fit's
    seed (42) and epoch (0), micro-batch 32 x 1, so the documents, their order and their padding are the same and
    what differs is the loop alone. Returns the real tokens it met too, to check against ours."""
    torch.manual_seed(0)
    model = factory.build_model("bert", prep.backbone, len(prep.label_names), profile.bert_model)
    cfg, seen = profile.bert, []
    loader = make_loader(prep.data["train"], prep.tokenizer, 32, shuffle=True, seed=42)
    collate = loader.collate_fn

    def without_idx(features):
        batch = collate(features)
        seen.append(int(batch["attention_mask"].sum()))
        return {k: v for k, v in batch.items() if k != "idx"}

    loader.collate_fn = without_idx
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=32, gradient_accumulation_steps=1, max_steps=steps,
        learning_rate=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_ratio, lr_scheduler_type="linear",
        max_grad_norm=cfg.max_grad_norm, bf16=precision == "bf16", use_cpu=not torch.cuda.is_available(),
        save_strategy="no", report_to=[], logging_strategy="no", dataloader_num_workers=0, disable_tqdm=True, seed=0)
    trainer = _OurBatchesTrainer(model=model, args=args, loader=loader)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "docs": steps * 32, "tokens": sum(seen[:steps])}


def epoch_padding(lengths: np.ndarray, batch: int = 32) -> dict:
    """Padding over one whole training epoch of each sampler (pad tokens / real tokens), padded as each row pads:
    ours (LengthGroupedBatchSampler, mega-batches of 50 x batch, padded to a multiple of 8), the Trainer's
    LengthGroupedSampler (transformers' mega-batches) with DataCollatorWithPadding(pad_to_multiple_of=8), and random
    batches padded to a multiple of 8 and to max_length."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    def waste(batches, pad_to=None):
        padded = sum(len(b) * (pad_to or padded_length(int(lengths[b].max()))) for b in batches)
        return padded / lengths.sum() - 1

    torch.manual_seed(42)
    ours = list(LengthGroupedBatchSampler(lengths, batch, shuffle=True, seed=42))
    order = list(LengthGroupedSampler(batch, lengths=lengths.tolist()))
    theirs = [order[i:i + batch] for i in range(0, len(order), batch)]
    shuffled = np.random.default_rng(42).permutation(len(lengths))
    random_batches = [shuffled[i:i + batch] for i in range(0, len(shuffled), batch)]
    return {"ours": waste(ours), "trainer_length_grouped": waste(theirs), "random": waste(random_batches),
            "random_to_max_length": waste(random_batches, int(lengths.max()))}


def packed_bilstm(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """BiLSTMClassifier.bilstm as it was: nn.LSTM over packed sequences (the reference the dense path must beat)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    h, _ = self.lstm(packed)
    return pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])[0]


def bench_ours(prep, profile, steps: int, precision: str, length_grouped: bool, out: Path, kind: str = "bert",
               compile: str = "", batch: tuple = BEST_BATCH, packed: bool = False) -> dict:
    torch.manual_seed(0)
    model = factory.build_model(kind, prep.backbone, len(prep.label_names), profile.bert_model, profile.bilstm_model)
    if packed:
        model.bilstm = packed_bilstm.__get__(model)
    cfg = dataclasses.replace(getattr(profile, kind), batch_size=batch[0], grad_accum=batch[1], max_steps=steps,
                              epochs=1, precision=precision, length_grouped=length_grouped, compile=compile)
    data = {"train": prep.data["train"], "validation": prep.data["validation"].select(range(8))}
    result = fit(model, data, prep.tokenizer, cfg, out, meta=pipeline.model_meta(kind, prep, 42), seed=42, resume=False)
    h = result.history[0]
    docs = steps * 32
    return {"seconds": h["seconds"], "docs": docs, "tokens": h["tokens_per_s"] * h["seconds"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="minilm", help="minilm | bert-base-uncased-random | tiny")
    parser.add_argument("--model", default="bert", choices=["bert", "bilstm"],
                        help="bilstm: our loop only, padded to max_length vs length-grouped (no Trainer rows)")
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps (x 32 documents) per configuration")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed run first (kernel selection, JIT)")
    parser.add_argument("--max-length", type=int, default=512, help="tokens per document (the cpu profile's BERT: 512)")
    parser.add_argument("--only", nargs="+", default=None, help="subset of configurations")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each row, alternated; the median is kept")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    hf_logging.set_verbosity_error()

    # every model at --max-length (the cpu profile lets BERT read more: its own max_length would pad ours-seed further)
    profile = get_profile("cpu", backbone=args.backbone, max_length=args.max_length, bert__max_length=0,
                          bilstm__max_length=0)
    prep = pipeline.prepare(profile)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    seed_precision = "fp16" if device == "cuda" else "fp32"
    best_precision = resolve_precision("auto", device)
    configs = {
        "trainer-seed": lambda out, steps: bench_trainer(prep, profile, steps, seed_precision, out, best=False),
        "trainer-best": lambda out, steps: bench_trainer(prep, profile, steps, best_precision, out, best=True),
        "trainer-our-batches": lambda out, steps: bench_trainer_our_batches(prep, profile, steps, best_precision, out),
        "ours-seed": lambda out, steps: bench_ours(prep, profile, steps, seed_precision, False, out, args.model,
                                                   batch=SEED_BATCH),
        "ours": lambda out, steps: bench_ours(prep, profile, steps, best_precision, True, out, args.model),
        "ours-packed": lambda out, steps: bench_ours(prep, profile, steps, best_precision, True, out, args.model,
                                                     packed=True),
        # torch.compile (inductor) with batches padded to 4 length buckets; the untimed warm-up run compiles
        # the shapes it meets, the timed run compiles any bucket not met yet (included in its time)
        "ours-compiled": lambda out, steps: bench_ours(prep, profile, steps, best_precision, True, out, args.model,
                                                       "inductor"),
    }
    if device == "cpu" and not (args.only and "ours-compiled" in args.only):
        del configs["ours-compiled"]  # minutes of compilation on a 2-core CPU: ask for it with --only
    if args.model != "bert":
        configs = {k: v for k, v in configs.items() if k.startswith("ours")}
    else:
        del configs["ours-packed"]
    n_train = len(prep.data["train"])
    # this process, these threads, just before the rows; bf16 only where a row trains in it (emulated bf16 on an
    # AVX2-only CPU took minutes to time)
    peak = bench_matmul.measure(5, ("bf16", "fp32") if best_precision == "bf16" else ("fp32",))["peak_gflops"]
    lengths = np.asarray(prep.data["train"]["length"])
    model = factory.build_model(args.model, prep.backbone, 20, profile.bert_model, profile.bilstm_model)
    flops = train_flops_per_token(model, args.model, lengths)
    del model  # not alive through the timed rows
    print(f"training FLOPs per real token: {flops / 1e6:.1f} M; matmul peak "
          + ", ".join(f"{dt} {v:.0f}" for dt, v in peak.items()) + " GFLOP/s", flush=True)
    rows, chosen = {}, {k: v for k, v in configs.items() if not args.only or k in args.only}
    for name, run in chosen.items():
        if args.warmup_steps:
            with tempfile.TemporaryDirectory() as tmp:
                run(Path(tmp), args.warmup_steps)
    timed = {name: [] for name in chosen}
    for _ in range(args.repeats):  # rows alternated, so a drift in the machine's speed reaches every row alike
        for name, run in chosen.items():
            with tempfile.TemporaryDirectory() as tmp:
                timed[name].append(run(Path(tmp), args.steps))
            print(f"{name:<20} {timed[name][-1]['seconds']:7.1f} s", flush=True)
    for name, runs in timed.items():
        r = dict(sorted(runs, key=lambda x: x["seconds"])[len(runs) // 2])  # the median repeat
        r["seconds_each"] = [x["seconds"] for x in runs]
        precision = seed_precision if name.endswith("-seed") else best_precision
        r.update(docs_per_s=r["docs"] / r["seconds"], tokens_per_s=r["tokens"] / r["seconds"], precision=precision)
        r["s_per_epoch"] = n_train / r["docs_per_s"]
        r["gflops"] = flops * r["tokens_per_s"] / 1e9
        r["flop_utilisation"] = r["gflops"] / peak["bf16" if precision == "bf16" else "fp32"]
        rows[name] = r
        print(f"{name:<14} {r['docs_per_s']:7.2f} docs/s {r['tokens_per_s']:8.0f} tokens/s {r['s_per_epoch']:8.1f} "
              f"s/epoch  {r['gflops']:6.1f} GFLOP/s = {100 * r['flop_utilisation']:.0f} % of the {precision} peak",
              flush=True)
    for base in ("trainer-best", "trainer-our-batches", "trainer-seed", "ours-seed"):
        if base in rows:
            for name, r in rows.items():
                r[f"speedup_vs_{base}"] = rows[base]["s_per_epoch"] / r["s_per_epoch"]
                print(f"{name:<14} x{r[f'speedup_vs_{base}']:.2f} vs {base}")
    if "ours" in rows and "trainer-our-batches" in rows:  # the same batches: the same real tokens
        same = round(rows["ours"]["tokens"]) == round(rows["trainer-our-batches"]["tokens"])
        print(f"identical batches: {same} ({rows['ours']['tokens']:.0f} and {rows['trainer-our-batches']['tokens']:.0f}"
              " real tokens)", flush=True)
    padding = epoch_padding(lengths) if args.model == "bert" else None
    if padding:
        print("padding over a whole epoch: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in padding.items()))
    name = device_name(torch.device(device))
    result = {"device": name, "bf16_path": cpu_bf16_path() if device == "cpu" else None, "epoch_padding": padding,
              "repeats": args.repeats, "model": args.model, "backbone": args.backbone, "max_length": args.max_length,
              "steps": args.steps, "train_docs": n_train, "train_flops_per_token": flops, "matmul_peak_gflops": peak,
              "results": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
