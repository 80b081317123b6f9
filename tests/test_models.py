import json
from dataclasses import asdict

import pytest
import torch

from textlab import cli, factory
from textlab.backbones import config_dict, get_backbone, tiny_config
from textlab.config import get_profile
from textlab.hardware import cpu_bf16_path
from textlab.describe import architecture_stages, build_all, describe
from textlab.models import BiLSTMClassifier, MetaMLP


def test_bert_base_shapes_are_exact():
    counts = describe("bert-base-uncased", 20)
    assert counts["bert"] == {"total": 109_497_620, "trainable": 109_497_620, "frozen": 0}
    assert counts["bilstm"]["trainable"] == 7_395_477
    assert counts["bilstm"]["frozen"] == 23_837_184
    assert counts["meta_mlp"] == {"total": 7_340, "trainable": 7_340, "frozen": 0}


def test_describe_cli_json(capsys):
    assert cli.main(["describe", "--arch", "bert-base-uncased", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bert"]["total"] == 109_497_620 and out["bilstm"]["frozen"] == 23_837_184


def test_describe_embedded_backbone():
    counts = describe("minilm", 20)
    assert counts["bert"]["total"] == 22_720_916  # MiniLM-L6-H384 + 20-class head
    assert counts["bilstm"]["frozen"] == (30_522 + 512 + 2) * 384 + 2 * 384


def test_unknown_arch_lists_choices():
    with pytest.raises(ValueError, match="unknown arch 'gpt2'; choose one of: minilm, bert-base-uncased, tiny"):
        describe("gpt2")
    with pytest.raises(ValueError, match="unknown backbone 'gpt2'; choose one of"):
        get_backbone("gpt2")


def test_bert_classifier_head_is_pooler_dropout_linear():
    model = get_backbone("tiny").classifier(20, dropout=0.3)
    assert model.dropout.p == 0.3 and model.classifier.out_features == 20
    assert all(p.requires_grad for p in model.parameters())
    stages = architecture_stages(model, 256)
    assert [s[0] for s in stages] == ["WordPiece tokens", "Embeddings", "Encoder × 2", "Pooler", "Dropout", "Linear"]
    assert "64 → 20" in stages[-1][1]


def _bilstm(n=5):
    torch.manual_seed(0)
    return BiLSTMClassifier.from_config(tiny_config(), n)


def test_bilstm_embeddings_frozen_and_eval_mode():
    m = _bilstm().train()
    assert not any(p.requires_grad for p in m.embeddings.parameters())
    assert not m.embeddings.training and m.lstm.training
    assert [s[0] for s in architecture_stages(m)][2] == "BiLSTM × 2"


def test_bilstm_input_dropout_acts_in_training_only_and_adds_no_parameters():
    torch.manual_seed(0)
    plain, noisy = _bilstm(), BiLSTMClassifier.from_config(tiny_config(), 5, input_dropout=0.5)
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in noisy.parameters())
    noisy.load_state_dict(plain.state_dict())
    ids = torch.tensor([[101, 2000, 2001, 2002, 102]])
    with torch.no_grad():
        torch.testing.assert_close(noisy.eval()(input_ids=ids).logits, plain.eval()(input_ids=ids).logits)
        noisy.train()
        assert not noisy.embeddings.training  # the frozen module itself never drops out
        a, b = noisy(input_ids=ids).logits, noisy(input_ids=ids).logits
    assert not torch.equal(a, b)


def test_bilstm_handles_empty_and_padding_only_rows():
    m = _bilstm().eval()
    ids = torch.tensor([[101, 102, 0, 0], [101, 2000, 2001, 102], [0, 0, 0, 0]])
    mask = (ids != 0).long()
    out = m(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 2]))
    assert out.logits.shape == (3, 5) and torch.isfinite(out.logits).all() and torch.isfinite(out.loss)


def test_bilstm_ignores_padding():
    m = _bilstm().eval()
    ids = torch.tensor([[101, 2000, 2001, 102]])
    padded = torch.tensor([[101, 2000, 2001, 102, 0, 0, 0]])
    a = m(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    b = m(input_ids=padded, attention_mask=(padded != 0).long()).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_meta_mlp_seed_shape():
    m = MetaMLP(40, 20)
    assert sum(p.numel() for p in m.parameters()) == 7_340
    assert m(torch.rand(8, 40)).shape == (8, 20)
    assert architecture_stages(m)[0] == ("Member softmax, concatenated", "40 inputs")


def test_build_all_allocates_nothing():
    models = build_all("bert-base-uncased")
    assert all(p.device.type == "meta" for m in models.values() for p in m.parameters())


@pytest.mark.skipif(cpu_bf16_path() is None, reason="this CPU has no native bf16 path (AMX or AVX512-BF16): "
                    "precision auto trains in fp32 here, and PyTorch's oneDNN LSTM has no bf16 kernel for it")
def test_bilstm_under_bf16_autocast_is_finite_and_agrees():
    """The seed trained the BiLSTM in fp32 for fear that LayerNorm (eps=1e-12) underflows under autocast.
    Under CPU autocast the frozen embeddings (lookup + LayerNorm on fp32 inputs) stay fp32."""
    m = _bilstm(20).eval()
    torch.manual_seed(1)
    ids = torch.randint(1000, 30000, (6, 40))
    mask = torch.ones_like(ids)
    mask[0, 2:] = 0  # an empty document: [CLS] [SEP]
    with torch.no_grad():
        ref = m(input_ids=ids, attention_mask=mask).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            emb = m.embeddings(input_ids=ids)
            out = m(input_ids=ids, attention_mask=mask).logits
    assert emb.dtype == torch.float32 and torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.05
    assert torch.equal(out.float().argmax(1), ref.argmax(1))


def test_attention_dropout_setting_reaches_every_attention_layer_only():
    profile = get_profile("smoke", **{"bert_model.attention_dropout": 0.0})
    default, fused = (factory.build_model("bert", get_backbone("tiny"), 20, p.bert_model)
                      for p in (get_profile("smoke"), profile))
    def attention(m):
        return [x.dropout.p for x in m.modules() if type(x).__name__ == "BertSelfAttention"]
    assert attention(default) == [0.1, 0.1] and attention(fused) == [0.0, 0.0]
    assert fused.dropout.p == 0.3 and fused.bert.encoder.layer[0].output.dropout.p == 0.1  # head, hidden: unchanged
    assert sum(p.numel() for p in fused.parameters()) == sum(p.numel() for p in default.parameters())
    # in training mode, with every other dropout off, only attention dropout makes two passes differ
    ids = torch.randint(5, 100, (4, 12))
    outs = {}
    for name, attn in (("off", 0.0), ("on", 0.5)):
        torch.manual_seed(0)
        m = get_backbone("tiny").classifier(20, dropout=0.0, attention_dropout=attn).train()
        for mod in m.modules():
            if isinstance(mod, torch.nn.Dropout) and mod.p != attn:
                mod.p = 0.0
        outs[name] = [m(input_ids=ids).logits for _ in range(2)]
    assert torch.equal(*outs["off"]) and not torch.allclose(*outs["on"])
    with pytest.raises(ValueError, match=r"attention_dropout must be in \[0, 1\), got 1.0"):
        get_profile("cpu", **{"bert_model.attention_dropout": 1.0})


def test_bilstm_dense_path_equals_packed_sequences():
    """BiLSTMClassifier.bilstm (each direction dense, the backward one reversed per sequence) gives nn.LSTM's own
    packed-sequence outputs at every real position, and the same weight gradients."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    m = _bilstm()
    m.lstm.dropout = 0.0  # dropout masks are drawn differently; everything else must agree
    lengths = torch.tensor([12, 3, 7, 12, 1])
    x = torch.randn(5, 12, 64)
    real = (torch.arange(12)[None] < lengths[:, None]).unsqueeze(-1)  # (B, T, 1)
    ours = m.bilstm(x, lengths)
    packed, _ = m.lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    theirs, _ = pad_packed_sequence(packed, batch_first=True, total_length=12)
    torch.testing.assert_close(ours * real, theirs * real, rtol=0, atol=1e-6)
    g_ours = torch.autograd.grad((ours * real).square().sum(), list(m.lstm.parameters()))
    g_theirs = torch.autograd.grad((theirs * real).square().sum(), list(m.lstm.parameters()))
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert "_one_direction" not in dict(m.named_modules()) and not any("_one" in k for k in m.state_dict())


def test_a_new_head_on_the_embedded_backbone_loads_without_a_load_report(capfd):
    """transformers' LOAD REPORT (the new classifier head, as expected) filled notebooks 02 and 03's outputs."""
    from textlab.backbones import get_backbone

    get_backbone("minilm").classifier(3)
    out, err = capfd.readouterr()
    assert "LOAD REPORT" not in out + err and "MISSING" not in out + err


def test_a_checkpoint_is_rebuilt_by_the_same_factory_with_its_stored_settings():
    """factory.build_from_meta: the architecture and model settings a checkpoint stored, random weights, no download;
    the same parameters as the model the profile trains; attention dropout as trained (the backbone's own where an
    older checkpoint stored none)."""
    profile = get_profile("smoke", **{"bert_model.attention_dropout": 0.0, "bilstm_model.num_layers": 1})
    backbone = get_backbone("tiny")
    meta = {"kind": "bert", "backbone": "tiny", "model_config": config_dict(backbone.config), "num_labels": 7,
            "bert_model": asdict(profile.bert_model), "bilstm": asdict(profile.bilstm_model)}
    for kind in ("bert", "bilstm"):
        trained = factory.build_model(kind, backbone, 7, profile.bert_model, profile.bilstm_model)
        rebuilt = factory.build_from_meta({**meta, "kind": kind})
        assert [(n, p.shape) for n, p in rebuilt.named_parameters()] == \
            [(n, p.shape) for n, p in trained.named_parameters()]
    assert factory.build_from_meta(meta).config.attention_probs_dropout_prob == 0.0
    older = {k: v for k, v in meta.items() if k != "bert_model"}
    assert factory.build_from_meta(older).config.attention_probs_dropout_prob == 0.1  # BertConfig's own
    assert factory.build_from_meta({**meta, "kind": "bilstm"}).lstm.num_layers == 1
    with pytest.raises(ValueError, match="unknown model kind 'cnn'; choose one of: bert, bilstm"):
        factory.build_from_meta({**meta, "kind": "cnn"})
