"""Run the numbered notebooks in order with papermill; executed copies land in the profile's run folder."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .checkpoint import read_json, write_json
from .config import PROJECT_ROOT, get_profile, run_dir

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


def run(profile: str | None = None, only: list[str] | None = None, kernel_name: str = "python3") -> Path:
    """Execute notebooks with papermill; on failure raise NotebookFailed naming notebook, cell and partial copy."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    _absolute_paths_in_env()
    prof = get_profile(profile)
    out_dir = run_dir(prof) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = select(only)
    timings = {}
    quiet = bool(os.environ.get("CI")) or not sys.stderr.isatty()
    for i, nb in enumerate(chosen, 1):
        target = out_dir / nb.name
        print(f"[{i}/{len(chosen)}] {nb.stem} (profile {prof.name}) -> {target}", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(nb), str(target), parameters={"profile": prof.name}, kernel_name=kernel_name,
                                cwd=str(NOTEBOOK_DIR), progress_bar=not quiet, log_output=False)
        except PapermillExecutionError as e:
            raise NotebookFailed(
                f"{nb.name} failed in cell {e.exec_count} ({e.ename}: {e.evalue}).\n"
                f"The partially executed notebook is kept at {target}") from e
        timings[nb.stem] = round(time.perf_counter() - t0, 1)
        print(f"      done in {timings[nb.stem]:.0f} s", flush=True)
    log = run_dir(prof) / "run.json"
    previous = read_json(log).get("seconds", {}) if log.exists() else {}
    write_json(log, {"profile": prof.name, "seconds": {**previous, **timings}})
    return out_dir
