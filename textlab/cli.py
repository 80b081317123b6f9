"""python -m textlab {run, train, describe, predict, export}."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from .config import PROFILES
from .errors import NotebookFailed, TextlabError, show_warnings_briefly
from .kinds import NEURAL, SERVED


# Each command imports what it needs when it runs: `textlab --help` and a mistyped argument answer in 0.08 s instead
# of the 5-17 s that torch, transformers and papermill take to import (python -X importtime, 2-core AMD EPYC).


def _run(args) -> int:
    from .runner import run

    out = run(args.profile, args.only, data=args.data, overrides=args.set, name=args.name, fresh=args.fresh)
    print(f"executed notebooks in {out}")
    return 0


def _train(args) -> int:
    from . import locks, runs
    from .config import resolve
    from .pipeline import open_run, train_and_evaluate

    profile = resolve(args.profile, args.data, args.set)
    with locks.lock(runs.runs_root() / runs.run_name(profile, args.name)):  # for the whole command, as `run` does
        prep = open_run(profile, name=args.name, fresh=args.fresh)
        seeds = [args.seed] if args.seed is not None else list(prep.profile.seeds)
        for i, seed in enumerate(seeds):
            record = train_and_evaluate(args.model, prep, seed=seed, trainings_after=len(seeds) - 1 - i)
            print(json.dumps({"seed": seed, **{k: record["test"][k] for k in ("accuracy", "macro_f1")}}))
    return 0


def _describe(args) -> int:
    from .describe import describe

    counts = describe(args.arch, args.num_labels)
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        print(f"{'model':<10}{'total':>14}{'trainable':>14}{'frozen':>14}   ({args.arch}, {args.num_labels} classes)")
        for name, c in counts.items():
            print(f"{name:<10}{c['total']:>14,}{c['trainable']:>14,}{c['frozen']:>14,}")
    return 0


def _predict(args) -> int:
    from .predict import main as predict_main

    return predict_main(args)


def _export(args) -> int:
    from .export import export

    out = export(args.run, args.model, args.out, seed=args.seed, force=args.force)
    print(f"exported the {args.model} model of {args.run} to {out} (model card: {out / 'README.md'})")
    return 0


def _run_arguments(p: argparse.ArgumentParser) -> None:
    """What makes a run: profile, data, overrides; and where it goes."""
    p.add_argument("--profile", choices=list(PROFILES), default=None, help="default: $TEXTLAB_PROFILE or cpu")
    p.add_argument("--data", metavar="FILE", default="",
                   help="your own .csv / .jsonl / .parquet (columns text, label[, split]); default: 20 Newsgroups")
    p.add_argument("--set", action="extend", nargs="+", metavar="KEY=VALUE",
                   help="override profile settings, e.g. --set bert.epochs=2 bilstm.lr=1e-3 (repeatable)")
    p.add_argument("--name", default="", help="run folder runs/NAME (default: the profile, plus the data file's stem)")
    p.add_argument("--fresh", action="store_true", help="delete what the run folder holds and start it over")


def _parser() -> argparse.ArgumentParser:
    """Every command, its arguments and the function that carries it out (args.func)."""
    parser = argparse.ArgumentParser(prog="textlab", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the traceback of textlab's own errors too")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="execute the notebook series with papermill")
    _run_arguments(p)
    p.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="e.g. 02_bert or 02 (several allowed)")
    p.set_defaults(func=_run)

    p = sub.add_parser("train", help="train and evaluate one model outside the notebooks "
                                     "(e.g. under `accelerate launch -m textlab train ...` on several GPUs)")
    _run_arguments(p)
    p.add_argument("--model", choices=NEURAL, default="bert")
    p.add_argument("--seed", type=int, default=None, help="train this one training seed (default: each of the run's)")
    p.set_defaults(func=_train)

    p = sub.add_parser("describe", help="parameter counts of the three models, from config alone (offline)")
    p.add_argument("--arch", default="bert-base-uncased", help="bert-base-uncased, minilm, tiny")
    p.add_argument("--num-labels", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_describe)

    p = sub.add_parser("predict", help="classify new text with a trained run")
    p.add_argument("--run", required=True, help="run folder, e.g. runs/cpu")
    p.add_argument("--model", default=None,
                   help="bert, bilstm or ensemble (the one the run chose); default: bert, or what an export holds")
    p.add_argument("--seed", type=int, default=None,
                   help="bert / bilstm: the model of this training seed (default: the run's first seed)")
    p.add_argument("--file", help="one document per line ('-' = stdin)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--precision", choices=["fp32", "bf16", "int8"], default="fp32",
                   help="bf16: faster on CPUs with AMX / AVX512-BF16; int8: dynamic quantization (docs/speed.md)")
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.add_argument("texts", nargs="*", help="texts to classify ('-' = stdin)")
    p.set_defaults(func=_predict)

    p = sub.add_parser("export", help="write a trained model to a folder of its own, with a model card "
                                      "(bert: a standard transformers folder)")
    p.add_argument("--run", required=True, help="run folder, e.g. runs/cpu")
    p.add_argument("--model", choices=SERVED, default="bert",
                   help="ensemble: the one the run chose, with its members")
    p.add_argument("--seed", type=int, default=None,
                   help="bert / bilstm: the model of this training seed (default: the run's first)")
    p.add_argument("--force", action="store_true", help="replace an earlier export in OUT")
    p.add_argument("out", metavar="OUT", help="the folder to create")
    p.set_defaults(func=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    show_warnings_briefly()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"\ninterrupted{_how_to_resume(args, argv)}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    # What textlab can name and explain, and invalid settings, arguments or paths; anything else keeps its traceback.
    except (TextlabError, ValueError, FileNotFoundError) as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1 if isinstance(e, NotebookFailed) else 2


def _how_to_resume(args, argv: list[str] | None) -> str:
    if args.command not in ("run", "train"):
        return ""
    again = "python -m textlab " + shlex.join(sys.argv[1:] if argv is None else argv)
    return (": finished notebooks and models are kept, and training resumes from its last checkpoint (at most "
            f"save_every_minutes of it is lost): run `{again}` again to go on")


if __name__ == "__main__":
    raise SystemExit(main())
