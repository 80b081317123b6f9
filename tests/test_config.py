import pytest

from textlab import config
from textlab.backbones import BACKBONES


@pytest.mark.parametrize("name", list(config.PROFILES))
def test_every_profile_resolves(name):
    p = config.get_profile(name)
    assert p.name == name and p.backbone in BACKBONES


def test_profile_from_env(monkeypatch):
    monkeypatch.setenv("TEXTLAB_PROFILE", "paper")
    assert config.get_profile().backbone == "bert-base-uncased"
    monkeypatch.delenv("TEXTLAB_PROFILE")
    assert config.get_profile().name == "cpu"


def test_paper_profile_is_the_seed_recipe():
    p = config.get_profile("paper")
    assert (p.bert.batch_size, p.bert.grad_accum, p.bert.precision, p.max_length) == (16, 2, "fp16", 256)


def test_overrides_nested_and_typed():
    p = config.get_profile("smoke", bert__epochs=3, **{"bilstm.lr": "0.01", "max_length": 48})
    assert p.bert.epochs == 3 and p.bilstm.lr == 0.01 and p.max_length == 48
    assert config.get_profile("smoke").bert.epochs == 1  # defaults untouched
    p = config.get_profile("smoke", **{"bert.pad_buckets": "64,128", "bert.compile": "inductor"})
    assert p.bert.pad_buckets == (64, 128) and p.bert.compile == "inductor"
    with pytest.raises(ValueError, match="pad_buckets must be positive token lengths"):
        config.get_profile("smoke", **{"bert.pad_buckets": "64,-1"})


def test_unknown_key_lists_valid_ones():
    with pytest.raises(KeyError, match="unknown setting 'bert.lrr'.*lr"):
        config.get_profile("smoke", bert__lrr=1.0)
    with pytest.raises(ValueError, match="unknown profile 'gpu'; choose one of: smoke, cpu, paper"):
        config.get_profile("gpu")


def test_wrong_types_and_values():
    with pytest.raises(TypeError, match="must be of type int"):
        config.get_profile("smoke", bert__epochs="many")
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        config.get_profile("smoke", bert__precision="fp8")
    with pytest.raises(ValueError, match="max_length"):
        config.get_profile("smoke", max_length=1024)


def test_only_the_unchanged_study_writes_committed_figures(monkeypatch, tmp_path):
    from textlab.runs import figures_dir

    study, root = config.get_profile("study"), config.PROJECT_ROOT / "runs"
    monkeypatch.delenv("TEXTLAB_FIGURES", raising=False)
    monkeypatch.delenv("TEXTLAB_RUNS", raising=False)
    assert figures_dir(study, root / "study") == config.PROJECT_ROOT / "figures"
    assert figures_dir(config.get_profile("cpu"), root / "cpu") == root / "cpu" / "figures"  # one seed: not the study
    assert figures_dir(study, root / "mine") == root / "mine" / "figures"  # another run name
    changed = config.resolve("study", overrides="bert.epochs=2")
    assert figures_dir(changed, root / "study") == root / "study" / "figures"  # other settings
    own = config.resolve("study", data="reviews.csv")
    assert figures_dir(own, root / "study-reviews") == root / "study-reviews" / "figures"
    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path))
    assert figures_dir(study, tmp_path / "study") == tmp_path / "study" / "figures"


def test_one_override_parser_for_cli_papermill_and_notebooks():
    want = {"bert.epochs": "2", "bilstm.lr": "1e-3"}
    assert config.parse_overrides("bert.epochs=2 bilstm.lr=1e-3") == want
    assert config.parse_overrides("bert.epochs=2\n  bilstm.lr=1e-3\n") == want
    assert config.parse_overrides(["bert.epochs=2", "bilstm.lr=1e-3"]) == want
    assert config.parse_overrides({"bert.epochs": 2}) == {"bert.epochs": 2}
    assert config.parse_overrides("") == {} and config.parse_overrides(None) == {}
    p = config.resolve("smoke", data="my.csv", overrides="bert.epochs=2 bert.pad_buckets=64,128 bilstm.lr=1e-3")
    assert (p.data, p.bert.epochs, p.bert.pad_buckets, p.bilstm.lr) == ("my.csv", 2, (64, 128), 1e-3)
    assert config.resolve(p, overrides={"split_seed": 7}).split_seed == 7 and p.split_seed == 42
    with pytest.raises(ValueError, match=r"an override is KEY=VALUE \(e.g. bert.epochs=2\), got 'bert.epochs'"):
        config.resolve("smoke", overrides="bert.epochs")
    with pytest.raises(ValueError, match="unknown setting 'bert.epoch'; valid keys here: bert.epochs"):
        config.resolve("smoke", overrides="bert.epoch=2")


def test_train_cli_overrides_fail_before_any_work(capsys):
    from textlab import cli

    assert cli.main(["train", "--profile", "smoke", "--set", "bilstm.lr"]) == 2
    assert "an override is KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["train", "--profile", "smoke", "--set", "bilstm.nope=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown setting 'bilstm.nope'" in err and "bilstm.lr" in err
    assert cli.main(["train", "--profile", "smoke", "--set", "bilstm.epochs=two"]) == 2
    assert "must be of type int" in capsys.readouterr().err


def test_per_model_max_length():
    cpu = config.get_profile("cpu")
    assert (cpu.max_length, cpu.bert.max_length, cpu.bilstm.max_length) == (256, 512, 0)  # 0: the profile's
    assert config.get_profile("smoke", **{"bert.max_length": "384"}).bert.max_length == 384
    with pytest.raises(ValueError, match=r"max_length must be 0 \(the profile's\) or in \[8, 512\]"):
        config.get_profile("smoke", **{"bert.max_length": 1024})


def test_truncation_strategy_is_checked():
    assert config.get_profile("cpu").bilstm.truncation == "head"
    assert config.get_profile("smoke", **{"bert.truncation": "head_tail"}).bert.truncation == "head_tail"
    with pytest.raises(ValueError, match="unknown truncation 'tail'; choose one of: head, head_tail"):
        config.get_profile("smoke", **{"bert.truncation": "tail"})
