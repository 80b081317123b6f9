"""Run the numbered notebooks in order with papermill; executed copies land in the profile's run folder."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from . import runs
from .checkpoint import read_json, write_json
from .config import PROJECT_ROOT, parse_overrides, resolve

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"


class NotebookFailed(RuntimeError):
    pass


def notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def select(only: list[str] | None) -> list[Path]:
    """All notebooks, or those named by stem ("02_bert") or number ("02")."""
    found = notebooks()
    if not only:
        return found
    chosen = []
    for name in only:
        match = [nb for nb in found if nb.stem == name or nb.stem.split("_")[0] == name]
        if not match:
            raise ValueError(f"unknown notebook {name!r}; choose from: {', '.join(nb.stem for nb in found)}")
        chosen += [m for m in match if m not in chosen]
    return sorted(chosen)


def _absolute_paths_in_env() -> None:
    """Notebooks run with notebooks/ as working directory: a relative $TEXTLAB_20NG / $TEXTLAB_RUNS /
    $TEXTLAB_CACHE / $TEXTLAB_FIGURES given from the caller's directory must not change meaning there."""
    for name in ("TEXTLAB_20NG", "TEXTLAB_RUNS", "TEXTLAB_CACHE", "TEXTLAB_FIGURES"):
        if os.environ.get(name):
            os.environ[name] = os.path.abspath(os.environ[name])


def run(profile: str | None = None, only: list[str] | None = None, *, data: str = "", overrides=None, name: str = "",
        fresh: bool = False) -> Path:
    """Execute notebooks with papermill on one run (profile, your data file, overrides, run name); on failure raise
    NotebookFailed naming notebook, cell and partial copy. The run folder is checked against its manifest (or
    emptied, fresh=True) before any notebook starts, so a refusal comes at once, not after an hour."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .backbones import get_backbone
    from .data import load_for_profile

    _absolute_paths_in_env()
    data = os.path.abspath(data) if data else ""  # notebooks run in notebooks/
    items = parse_overrides(overrides)
    prof = resolve(profile, data, items)  # a bad key or value stops here, before any notebook
    chosen = select(only)
    run_dir = runs.open_run(prof, load_for_profile(prof), get_backbone(prof.backbone), name, fresh)
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"profile": prof.name, "data": data, "overrides": " ".join(f"{k}={runs.format_value(v)}" for k, v in items.items()),
                  "name": run_dir.name}
    timings = {}
    quiet = bool(os.environ.get("CI")) or not sys.stderr.isatty()
    for i, nb in enumerate(chosen, 1):
        target = out_dir / nb.name
        print(f"[{i}/{len(chosen)}] {nb.stem} (run {run_dir.name}) -> {target}", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(nb), str(target), parameters=parameters, kernel_name="python3",
                                cwd=str(NOTEBOOK_DIR), progress_bar=not quiet, log_output=False)
        except PapermillExecutionError as e:
            raise NotebookFailed(
                f"{nb.name} failed in cell {e.exec_count} ({e.ename}: {e.evalue}).\n"
                f"The partially executed notebook is kept at {target}") from e
        timings[nb.stem] = round(time.perf_counter() - t0, 1)
        print(f"      done in {timings[nb.stem]:.0f} s", flush=True)
    log = run_dir / "run.json"
    previous = read_json(log).get("seconds", {}) if log.exists() else {}
    write_json(log, {"run": run_dir.name, "profile": prof.name, "seconds": {**previous, **timings}})
    return out_dir
