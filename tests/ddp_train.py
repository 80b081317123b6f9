"""Run by tests/test_train.py under torchrun (2 CPU processes, gloo): each rank writes a hash of its weights."""

import hashlib
import sys
from pathlib import Path

import torch
from accelerate import PartialState

from textlab import factory, pipeline
from textlab.config import get_profile
from textlab.train import fit

csv, out = sys.argv[1], Path(sys.argv[2])
profile = get_profile("smoke", data=csv, max_length=16, bert__epochs=2, bert__batch_size=8)
prep = pipeline.prepare(profile)
torch.manual_seed(0)
model = factory.build_model("bert", prep.backbone, len(prep.label_names), profile.bert_model)
result = fit(model, prep.data, prep.tokenizer, profile.bert, out / "model", meta=pipeline.model_meta("bert", prep, 42),
             seed=0, cpu=True)
state = result.accelerator.unwrap_model(result.model).state_dict()
h = hashlib.sha256()
for k in sorted(state):
    h.update(k.encode() + state[k].detach().cpu().numpy().tobytes())
rank = PartialState().process_index
(out / f"rank{rank}.txt").write_text(f"{PartialState().distributed_type} {PartialState().num_processes} "
                                     f"{h.hexdigest()}")
