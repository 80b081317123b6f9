"""Training seeds: the setting, a run that grows its seeds, per-seed resume, the choice across seeds (deep ensembles),
and the generated conclusions, each against a known answer."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from textlab import artifacts
from textlab import checkpoint as ckpt
from textlab import pipeline, runs, seeds
from textlab.config import PROFILES, EnsembleConfig, get_profile, resolve
from textlab.ensemble_choice import choose_across_seeds, choose_ensemble, seed_key, shown_variants, wins


# ---------------------------------------------------------------- the setting


def test_one_seed_by_default_and_three_in_the_study():
    assert PROFILES["cpu"].seeds == (42,) and PROFILES["smoke"].seeds == (42,)
    study = PROFILES["study"]
    assert study.seeds == (42, 43, 44) and study.split_seed == PROFILES["cpu"].split_seed == 42
    assert dataclasses.replace(study, name="cpu", seeds=(42,)) == PROFILES["cpu"]  # the cpu profile, three seeds


def test_seeds_from_the_command_line():
    assert resolve("smoke", overrides="seeds=42,43").seeds == (42, 43)
    assert resolve("smoke", overrides="seeds=7").seeds == (7,)


@pytest.mark.parametrize("value", ["42,42", "-1", "", "4.5", "'a'"])
def test_bad_seeds_are_refused_with_the_rule(value):
    with pytest.raises(ValueError, match="seeds must be|must be of type"):
        resolve("smoke", overrides=f"seeds={value}")


def test_the_split_does_not_move_with_the_training_seeds(tiny_prep):
    other = pipeline.prepare(dataclasses.replace(tiny_prep.profile, seeds=(43, 44)))
    assert other.fingerprint == tiny_prep.fingerprint  # same documents in every split, in the same order


# ---------------------------------------------------------------- a run's seeds


def _manifest(profile):
    return {"schema": artifacts.SCHEMA, "command": "python -m textlab run", "settings": runs.settings(profile)}


def test_a_run_may_add_seeds_but_not_drop_or_reorder_them(tmp_path, capsys):
    run = tmp_path / "smoke"
    runs.check_manifest(run, _manifest(get_profile("smoke", seeds=(42,))))
    runs.check_manifest(run, _manifest(get_profile("smoke", seeds=(42, 43))))  # grows: accepted, recorded
    assert "smoke: adding seed 43 to this run; the seeds it has trained are kept" in capsys.readouterr().out
    assert artifacts.read_json(run / runs.MANIFEST)["settings"]["seeds"] == [42, 43]
    for seeds_now in ((42,), (43, 42), (43, 44)):
        with pytest.raises(runs.RunError, match=r"settings.seeds: \[42, 43\] ->"):
            runs.check_manifest(run, _manifest(get_profile("smoke", seeds=seeds_now)))
    with pytest.raises(runs.RunError, match="settings.bert.epochs: 1 -> 2"):  # other settings beside new seeds
        runs.check_manifest(run, _manifest(get_profile("smoke", seeds=(42, 43, 44), **{"bert.epochs": 2})))


def test_a_seed_outside_the_run_is_refused(tiny_profile):
    with pytest.raises(ValueError, match=r"seed 7 is not a training seed of this run \(seed 42\); add it with "
                                         r"--set seeds=42,7"):
        pipeline._check_seed(tiny_profile, 7)


def _ctrl_c_after(step: int):
    def on_step(state):
        if state.global_step >= step:
            raise KeyboardInterrupt(f"stopped after step {state.global_step}")
    return on_step


def test_interrupted_in_the_second_seed_resumes_inside_it(tiny_profile, tiny_prep, tmp_path, monkeypatch, capsys):
    """Seed 42 finished, seed 43 cut short at step 3: the next call re-uses 42, resumes 43 from its checkpoint, and
    ends with the same seed-43 model as an uninterrupted training."""
    profile = dataclasses.replace(tiny_profile, seeds=(42, 43),
                                  bilstm=dataclasses.replace(tiny_profile.bilstm, save_every_steps=3))
    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path / "runs"))
    prep = pipeline.open_run(profile, prep=tiny_prep)
    pipeline.train_and_evaluate("bilstm", prep, seed=42)
    first = ckpt.read_pointer(prep.run / "seed-42" / "bilstm")
    with pytest.raises(KeyboardInterrupt, match="stopped after step 3"):
        pipeline.train_seeds("bilstm", prep, on_step=_ctrl_c_after(3))
    assert ckpt.read_pointer(prep.run / "seed-43" / "bilstm")["last"] == "ckpt-00000003"
    capsys.readouterr()
    records = pipeline.train_seeds("bilstm", prep)
    out = capsys.readouterr().out
    assert "bilstm seed 42: re-using the finished training" in out
    assert "resuming bilstm seed 43 from ckpt-00000003" in out
    assert ckpt.read_pointer(prep.run / "seed-42" / "bilstm") == first
    assert list(records) == [42, 43] and records[43]["seed"] == 43 and records[43]["train_seconds"] > 0

    monkeypatch.setenv("TEXTLAB_RUNS", str(tmp_path / "reference"))
    reference = pipeline.train_and_evaluate("bilstm", pipeline.open_run(profile, prep=tiny_prep), seed=43)
    assert records[43]["test"]["accuracy"] == reference["test"]["accuracy"]
    np.testing.assert_array_equal(artifacts.read_npy(prep.run / "seed-43" / "bilstm" / "logits_test.npy"),
                                  artifacts.read_npy(tmp_path / "reference" / "smoke" / "seed-43" / "bilstm" /
                                                "logits_test.npy"))
    assert records[42]["test"]["accuracy"] != records[43]["test"]["accuracy"] or not np.array_equal(
        artifacts.read_npy(prep.run / "seed-42" / "bilstm" / "logits_test.npy"),
        artifacts.read_npy(prep.run / "seed-43" / "bilstm" / "logits_test.npy"))  # another seed, another model


# ---------------------------------------------------------------- the choice across seeds


CFG = EnsembleConfig(folds=3, max_epochs=5, weight_decays=(0.0,))


def _members(rng, y, noise, classes=4):
    """Logits that point at the true class plus Gaussian noise: more noise, less accuracy."""
    onehot = np.eye(classes)[y] * 2.0
    return onehot + rng.normal(0, noise, onehot.shape)


def _seeds(independent: bool, n_seeds=3, n=240, classes=4):
    rng = np.random.default_rng(0)
    y_val, y_test = rng.integers(0, classes, n), rng.integers(0, classes, n)
    shared = {k: {"validation": _members(rng, y_val, 2.2), "test": _members(rng, y_test, 2.2)}
              for k in ("bert", "bilstm", "tfidf")}
    members = {}
    for s in range(42, 42 + n_seeds):
        members[s] = {k: {"validation": _members(rng, y_val, 2.2), "test": _members(rng, y_test, 2.2)}
                      for k in ("bert", "bilstm", "tfidf")} if independent else shared
    return members, y_val, y_test


def test_independent_seeds_make_the_deep_ensemble_win():
    """Seeds whose errors are independent: averaging all nine members beats any three, on validation and test."""
    members, y_val, y_test = _seeds(independent=True)
    reports = {s: choose_ensemble(m, y_val, y_test, CFG, seed=s) for s, m in members.items()}
    run = choose_across_seeds(reports, members, y_val, y_test, CFG, seed=42)
    chosen = run.table.set_index("variant").loc[run.chosen]
    assert chosen["seed"] == "all" and "deep, 3 seeds" in run.chosen
    within = run.table[run.table["seed"] != "all"]
    assert chosen["val_cv_accuracy"] > within["val_cv_accuracy"].max()
    assert chosen["test_accuracy"] > max(r.table.set_index("variant").loc[r.chosen, "test_accuracy"]
                                         for r in reports.values())
    assert len(run.table) == sum(len(r.table) for r in reports.values()) + 6  # 2 deep groups x 3 averages
    assert set(run.table["seed"]) == {"42", "43", "44", "all"} and run.table["chosen"].sum() == 1
    deep = run.table[run.table["seed"] == "all"]
    assert set(deep["members"].str.count("@")) == {6, 9}  # BERT + BiLSTM of 3 seeds; all three kinds
    shown, marked = shown_variants(reports, run)  # the figure: seed 42's variants, the deep ones, the run's choice
    assert marked == run.chosen and marked in shown and len(shown) == len(reports[42].table) + 6
    assert all(k.endswith("[seed 42]") or "deep" in k for k in shown)


def test_identical_seeds_keep_a_seed_variant_by_the_tie_break():
    """Three copies of one seed: the deep averages equal that seed's, and ties go to fewer fitted parameters and
    members, so a variant of the first seed is the run's choice, the one each seed chose."""
    members, y_val, y_test = _seeds(independent=False)
    reports = {s: choose_ensemble(m, y_val, y_test, CFG, seed=42) for s, m in members.items()}
    run = choose_across_seeds(reports, members, y_val, y_test, CFG, seed=42)
    assert run.chosen == seed_key(reports[42].chosen, 42)
    assert wins(reports).to_dict("records") == [{"variant": reports[42].chosen, "seeds": "42, 43, 44", "wins": 3}]


def test_one_seed_is_that_seeds_choice():
    members, y_val, y_test = _seeds(independent=True, n_seeds=1)
    report = choose_ensemble(members[42], y_val, y_test, CFG, seed=42)
    chosen = report.chosen
    assert choose_across_seeds({42: report}, members, y_val, y_test, CFG).chosen == chosen


# ---------------------------------------------------------------- generated conclusions


def _scores(bert, bilstm):
    """Validation 4 points above test, as on 20 Newsgroups: BERT is best on validation too."""
    rows = []
    for s, (a, b) in enumerate(zip(bert, bilstm), 42):
        rows += [{"model": "BERT classifier", "seed": str(s), "test_accuracy": a, "test_macro_f1": a,
                  "val_accuracy": a + 0.04, "variant": "bert"},
                 {"model": "BiLSTM", "seed": str(s), "test_accuracy": b, "test_macro_f1": b, "val_accuracy": b + 0.04,
                  "variant": "bilstm"}]
    return pd.DataFrame(rows)


def test_a_gap_larger_than_the_seed_spread():
    p = seeds.paired(_scores([0.712, 0.715, 0.713], [0.680, 0.684, 0.681]), "BERT classifier", "BiLSTM")
    assert p["verdict"] == "larger than the seed spread" and p["n"] == 3
    assert p["gap"] == pytest.approx(0.031666, abs=1e-5) and p["min"] == pytest.approx(0.031)
    # differences 0.031, 0.031, 0.032: sd 0.000577, t(0.975, 2) = 4.303 -> half-width 0.001434
    assert p["half_width"] == pytest.approx(4.3027 * 0.00057735 / np.sqrt(3), rel=1e-3)


def test_a_gap_inside_the_seed_spread():
    # BERT ahead on average but behind in one seed: the sign does not hold
    p = seeds.paired(_scores([0.712, 0.705, 0.716], [0.708, 0.709, 0.706]), "BERT classifier", "BiLSTM")
    assert p["verdict"] == "inside the seed spread"
    # the same sign in every seed, yet three seeds of noisy differences do not exclude zero
    p = seeds.paired(_scores([0.712, 0.715, 0.713], [0.711, 0.705, 0.712]), "BERT classifier", "BiLSTM")
    assert all(d > 0 for d in p["diffs"].values()) and p["verdict"] == "inside the seed spread"
    assert seeds.paired(_scores([0.71], [0.70]), "BERT classifier", "BiLSTM")["verdict"] == "one seed"


def test_one_number_against_a_models_seeds():
    scores = _scores([0.712, 0.715, 0.713], [0.680, 0.684, 0.681])
    assert seeds.against_one(scores, "BERT classifier", 0.7023)["verdict"] == "outside the seed spread"
    assert seeds.against_one(scores, "BERT classifier", 0.714)["verdict"] == "inside the seed spread"
    assert seeds.against_one(scores, "BERT classifier", 0.719)["verdict"] == "inside the seed spread"  # above max,
    # but inside the prediction interval of one more seed (mean 71.33, sd 0.15: ± 0.75 points)


def _study(bert, bilstm, meta, within, deep):
    rows = _scores(bert, bilstm).to_dict("records")
    for s, (m, w) in enumerate(zip(meta, within), 42):
        rows += [{"model": seeds.SEED_EXACT, "seed": str(s), "test_accuracy": m, "test_macro_f1": m,
                  "variant": "meta-MLP (seed-exact, bert+bilstm)"},
                 {"model": seeds.WITHIN_SEED, "seed": str(s), "test_accuracy": w, "test_macro_f1": w,
                  "variant": "temp-average (bert+bilstm)" if s < 44 else "weighted-average (bert+bilstm)"}]
    if len(bert) > 1:  # the run's choice: a deep ensemble; with one seed, that seed's choice
        rows.append({"model": "ensemble chosen on validation: x", "seed": "all", "test_accuracy": deep,
                     "test_macro_f1": deep, "variant": "temp-average (deep, 3 seeds, bert+bilstm)"})
    else:
        rows.append({**rows[-1], "model": "ensemble chosen on validation: x"})
    return pd.DataFrame(rows)


def test_conclusions_say_which_gaps_hold():
    scores = _study(bert=[0.712, 0.715, 0.713], bilstm=[0.680, 0.684, 0.681], meta=[0.713, 0.711, 0.716],
                    within=[0.730, 0.733, 0.729], deep=0.745)
    text = seeds.conclusions(scores, [{"ours": "BERT classifier", "test_accuracy": 0.7023, "setting": "GPU"}])
    assert text[0].startswith("3 training seeds (42, 43, 44): scores are mean ± sd over seeds")
    assert "BERT classifier 71.33 ± 0.15 % (min 71.20 %, max 71.50 %)" in text[1]
    assert "BERT classifier against BiLSTM: +3.17 points on average (per seed +3.10 to +3.20; 95 % interval ± 0.14): " \
           "larger than the seed spread" in text[2]
    assert "against the best single model on validation, BERT classifier, seed by seed: +1.73 points on average " \
           "(per seed +1.60 to +1.80; 95 % interval ± 0.29): larger than the seed spread" in text[3]
    assert "temperature-scaled average (BERT + BiLSTM) in 2 of 3 seeds (other choices: weighted average " \
           "(BERT + BiLSTM) 1)" in text[3]
    assert "deep temperature-scaled average (deep, 3 seeds, BERT + BiLSTM)" in text[4] and "74.50 %" in text[4]
    assert "+3.17 points from the mean of BERT classifier (best single model on validation), outside the seed " \
           "spread of BERT classifier" in text[4]
    # the seed report's meta-MLP against BERT: +0.00 on average, one seed below: inside the spread
    assert "The seed report's meta-MLP, reproduced exactly, against BERT" in text[5] and \
           "inside the seed spread" in text[5]
    assert "against 70.23 % in the seed report (one published number, GPU): +1.10 points, outside our seed spread" \
           in text[6]


def test_one_seed_claims_no_spread():
    scores = _study(bert=[0.712], bilstm=[0.680], meta=[0.713], within=[0.730], deep=None)
    text = "\n".join(seeds.conclusions(scores))
    assert "one seed measures no seed spread" in text
    assert "The ensemble chosen on validation, temperature-scaled average (BERT + BiLSTM), reaches 73.00 %; against " \
           "the best single model on validation, BERT classifier: +1.80 points (one seed)." in text
    assert "larger than the seed spread" not in text and "inside the seed spread" not in text


def test_a_choice_made_over_other_seeds_is_refused(tmp_path):
    """Seeds added after notebook 04: the old choice across seeds is not reported, nor served, until 04 runs again."""
    run = tmp_path / "run"
    artifacts.write_json(run / runs.MANIFEST, {"command": "python -m textlab run", "settings": {"seeds": [43, 42, 44]}})
    assert runs.run_seeds(run) == [43, 42, 44]  # the manifest's order: 43 is the reference seed
    artifacts.write_json(run / "ensemble" / "metrics.json", {"seeds": [43, 42]})
    with pytest.raises(ckpt.CheckpointError, match=r"chosen over seeds \[43, 42\], the run has \[43, 42, 44\]: run "
                                                    r"notebook 04 of this run again"):
        seeds.run_record(run)
    manifest = {"command": "python -m textlab run --profile cpu", "settings": {"seed": 42}}
    artifacts.write_json(run / runs.MANIFEST, manifest)
    with pytest.raises(ckpt.CheckpointError, match="made by a textlab without training seeds .* --profile cpu --fresh"):
        runs.run_seeds(run)
