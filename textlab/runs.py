"""A run folder, `runs/<name>` ($TEXTLAB_RUNS/<name>), and what it was made from.

`manifest.json` records all that determines the run's results (a fingerprint of the data, every setting, the backbone
and a hash of its weights, the versions of the packages that change numbers); a folder is only re-used under the same
manifest, and written under its lock (textlab.locks).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shlex
import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from huggingface_hub import try_to_load_from_cache

from .artifacts import SCHEMA, check_schema, read_json, write_json
from .errors import CheckpointError
from .config import EXECUTION_ONLY, PROFILES, PROJECT_ROOT, Profile
from .errors import RunError
from .kinds import NEURAL, notebook
from .locks import LOCK, OPEN, alone, keep_open, lock

MANIFEST = "manifest.json"
# Packages whose version can change a run's numbers (kernels, tokenization, splits, metrics).
NUMERIC_PACKAGES = ("torch", "transformers", "tokenizers", "accelerate", "datasets", "scikit-learn", "numpy", "scipy")
# Manifest keys recorded for the reader but not compared: where things are, not what they are.
NOT_COMPARED = ("run", "command", "profile", "data.source", "settings.name", "settings.data")


def run_name(profile: Profile, name: str = "") -> str:
    """The given name, else the profile's, with your data file's stem: "cpu", "cpu-reviews"."""
    if name:
        if name in (".", "..") or "/" in name or os.sep in name:
            raise ValueError(f"a run name is a folder name without '/', got {name!r}")
        return name
    return profile.name + (f"-{Path(profile.data).stem}" if profile.data else "")


def runs_root() -> Path:
    """$TEXTLAB_RUNS, else runs/ in the project; a RunError if it names something that is not a folder."""
    root = Path(os.environ.get("TEXTLAB_RUNS") or PROJECT_ROOT / "runs")
    if root.exists() and not root.is_dir():
        where = "TEXTLAB_RUNS" if os.environ.get("TEXTLAB_RUNS") else "the runs folder"
        raise RunError(f"{where} {root} is a file, not a folder: point TEXTLAB_RUNS at a folder for run folders "
                       f"(it is created if missing)")
    return root


# The committed study (figures/, notebooks/, README and docs blocks): this profile, unchanged, in runs/<its name>.
PUBLISHED = "study"


def figures_dir(profile: Profile, run: Path) -> Path:
    """The committed figures/ belong to the study profile on 20 Newsgroups, unchanged, in the default runs folder;
    any other run writes its figures inside its own folder. $TEXTLAB_FIGURES overrides both."""
    if os.environ.get("TEXTLAB_FIGURES"):
        return Path(os.environ["TEXTLAB_FIGURES"])
    if profile == PROFILES[PUBLISHED] and run.name == PUBLISHED and not os.environ.get("TEXTLAB_RUNS"):
        return PROJECT_ROOT / "figures"
    return run / "figures"


def dataset_fingerprint(dsd) -> str:
    """SHA-256 of every split's texts and labels, in order (what a model trains and is scored on)."""
    h = hashlib.sha256()
    for split in sorted(dsd):
        h.update(f"{split}\x00".encode())
        # Arrow batches, not the `text` column row by row: 10x faster (4.0 s -> 0.4 s for 100k documents)
        for batch in dsd[split].select_columns(["text", "label"]).with_format("arrow").iter(batch_size=10_000):
            for text, label in zip(batch["text"].to_pylist(), batch["label"].to_pylist()):
                h.update(f"{label}\x00".encode())
                h.update(text.encode("utf-8", "surrogatepass") + b"\x00")
    return h.hexdigest()


def weights_sha256(backbone) -> str | None:
    """A hash of the backbone's pre-trained weights file; None for a random-init backbone. Cached per process."""
    if backbone.pretrained is None:
        return None
    folder = Path(backbone.pretrained)
    if folder.is_dir():
        files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    else:  # a hub id: the downloaded file, if any
        found = try_to_load_from_cache(backbone.pretrained, "model.safetensors")
        if not isinstance(found, str):
            return f"hub:{backbone.pretrained}"
        files = [Path(found)]
    return _sha256(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@functools.cache
def _sha256(files: tuple[tuple[str, int, int], ...]) -> str:
    """Of the files' bytes in order; keyed by (path, size, mtime) too, so a changed file is hashed again."""
    h = hashlib.sha256()
    for path, _, _ in files:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def versions() -> dict[str, str]:
    """Python's and NUMERIC_PACKAGES' (all dependencies of textlab, or of one: tokenizers of transformers)."""
    out = {"python": ".".join(map(str, sys.version_info[:2]))}
    for package in NUMERIC_PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:  # installed without metadata (vendored, some conda builds)
            out[package] = "unknown"
    return out


def settings(profile: Profile) -> dict:
    """Every setting of the profile (JSON types), without the execution-only loop settings (speed, not results)."""
    out = json.loads(json.dumps(dataclasses.asdict(profile)))
    for kind in NEURAL:
        for key in EXECUTION_ONLY:
            out[kind].pop(key)
    return out


def command(profile: Profile, name: str) -> str:
    """The command that (re)makes this run."""
    base = PROFILES.get(profile.name)
    parts = ["python", "-m", "textlab", "run", "--profile", profile.name]
    if profile.data:
        parts += ["--data", os.path.abspath(profile.data)]
    if base is not None:
        ours, theirs = _flat(settings(profile)), _flat(settings(base))
        for key, value in ours.items():
            if key not in ("name", "data") and theirs.get(key) != value:
                parts += ["--set", f"{key}={format_value(value)}"]
    if name != run_name(profile):
        parts += ["--name", name]
    return shlex.join(parts)


def format_value(value) -> str:
    """A setting's value as KEY=VALUE on the command line (tuples as "64,128", no spaces: overrides split on them)."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def make_manifest(profile: Profile, name: str, raw, backbone, fingerprint: str = "") -> dict:
    """What determines a run's results. `raw`: the DatasetDict of texts (train / validation / test)."""
    source = os.path.abspath(profile.data) if profile.data else None
    return {
        "schema": SCHEMA,
        "run": name,
        "profile": profile.name,
        "command": command(profile, name),
        "data": {
            "source": source or "20 Newsgroups (bydate)",
            "is_20newsgroups": source is None,
            "fingerprint": fingerprint or dataset_fingerprint(raw),
            "splits": {s: len(raw[s]) for s in raw},
            "label_names": list(raw["train"].features["label"].names),
        },
        "settings": settings(profile),
        "backbone": {"name": profile.backbone, "weights_sha256": weights_sha256(backbone),
                     "config_sha256": hashlib.sha256(backbone.config.to_json_string().encode()).hexdigest()},
        "versions": versions(),
    }


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def differences(old: dict, new: dict, skip: tuple = NOT_COMPARED) -> list[tuple[str, object, object]]:
    """(key, old value, new value) for every dotted key whose value differs; `skip` keys (and their children) aside."""
    a, b = _flat(old), _flat(new)
    keep = lambda k: not any(k == s or k.startswith(s + ".") for s in skip)  # noqa: E731
    return [(k, a.get(k, "(absent)"), b.get(k, "(absent)")) for k in sorted(set(a) | set(b))
            if keep(k) and a.get(k, "(absent)") != b.get(k, "(absent)")]


def describe_differences(diff: list[tuple], limit: int = 12) -> str:
    shown = [f"  {k}: {_short(o)} -> {_short(n)}" for k, o, n in diff[:limit]]
    if len(diff) > limit:
        shown.append(f"  ... and {len(diff) - limit} more")
    return "\n".join(shown)


def _short(v) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    return text if len(text) <= 70 else text[:67] + "..."


def check_manifest(run: Path, manifest: dict) -> None:
    """Refuse a folder made from anything else; write the manifest into a new or empty one."""
    path = run / MANIFEST
    if not path.exists():
        leftovers = [p.name for p in run.iterdir() if p.name not in (LOCK, OPEN, "notebooks")] if run.exists() else []
        if leftovers:
            raise RunError(f"{run} holds a run without {MANIFEST} ({', '.join(sorted(leftovers)[:4])}): it was made by "
                           f"an older textlab, or by hand, and cannot be checked against these settings.\n"
                           f"{_ways_on(run, manifest)}")
        write_json(path, manifest)
        return
    old = read_json(path)
    check_schema(old, path, f".\n{_ways_on(run, manifest)}", error=RunError)
    diff = differences(old, manifest)
    if added_seeds(diff):
        print(f"{run.name}: adding seed{'s' * (len(added_seeds(diff)) > 1)} {', '.join(map(str, added_seeds(diff)))}"
              f" to this run; the seeds it has trained are kept", flush=True)
        write_json(path, manifest)
        return
    if diff:
        raise RunError(f"{run} was made from other data or settings than these; it is never re-used under them "
                       f"({len(diff)} difference{'s' * (len(diff) > 1)}, made -> now):\n{describe_differences(diff)}\n"
                       f"{_ways_on(run, manifest)}")


def added_seeds(diff: list[tuple]) -> list[int]:
    """The seeds appended, when the one difference is that the training seeds grew (old seeds first, in order): each
    seed's models are independent of the others', so a run may add seeds without retraining those it has."""
    if len(diff) != 1 or diff[0][0] != "settings.seeds" or not isinstance(diff[0][1], list):
        return []
    old, new = diff[0][1], diff[0][2]
    return list(new[len(old):]) if len(new) > len(old) and new[:len(old)] == old else []


def _ways_on(run: Path, manifest: dict) -> str:
    return (f"Either give this run another name (--name NAME; in a notebook's parameters, name = \"NAME\"), or "
            f"start it over with --fresh, which deletes {run} first:\n  {manifest['command']} --fresh")


def read_manifest(run: Path) -> dict | None:
    path = Path(run) / MANIFEST
    return read_json(path) if path.exists() else None


def run_seeds(run: Path) -> list[int]:
    """The training seeds of a run folder in its manifest's order (the first is the reference seed); a folder without
    a manifest (a model copied by hand) has the seeds of its seed-* folders."""
    manifest = read_manifest(run)
    if manifest is None:
        return sorted(int(d.name[5:]) for d in Path(run).glob("seed-*") if d.name[5:].isdigit())
    if "seeds" not in manifest["settings"]:
        raise CheckpointError(f"{run} was made by a textlab without training seeds (its manifest has no seeds): make "
                              f"it again with `{manifest['command']} --fresh`")
    return list(manifest["settings"]["seeds"])


def how_to_make(run: Path, notebook: str) -> str:
    """The command that runs `notebook` for the run in `run`, from its manifest (so with its data and settings)."""
    manifest = read_manifest(run)
    if manifest is None:
        profile = f" --profile {Path(run).name}" if Path(run).name in PROFILES else ""
        return f"python -m textlab run{profile} --only {notebook}"
    return f"{manifest['command']} --only {notebook}"


def train_first(run: Path, kind: str) -> str:
    """The advice of every "not trained yet" error: the notebook that makes `kind`, with this run's own command."""
    return f"run notebook {notebook(kind)} of this run first: {how_to_make(run, notebook(kind))}"


def open_folder(profile: Profile, raw, backbone, name: str = "", fresh: bool = False, fingerprint: str = "") -> Path:
    """The run folder for these settings, created if new: checked against (or given) its manifest, under the lock.
    fresh=True deletes what the folder held first."""
    name = run_name(profile, name)
    run = runs_root() / name
    manifest = make_manifest(profile, name, raw, backbone, fingerprint)
    with lock(run):
        if fresh:
            with alone(run):
                for child in run.iterdir():
                    if child.name not in (LOCK, OPEN):
                        shutil.rmtree(child) if child.is_dir() else child.unlink()
        check_manifest(run, manifest)
        keep_open(run)
    return run
