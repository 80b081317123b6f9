"""Run the numbered notebooks in order with papermill into the run folder; the terminal shows what they print (one
line per epoch) and the time left. The committed `cpu` run also writes cleaned copies back into notebooks/."""

from __future__ import annotations

import copy
import logging
import os
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
import papermill as pm
from papermill.exceptions import PapermillExecutionError

from . import locks, pipeline, runs
from .backbones import get_backbone
from .artifacts import read_json, write_json, write_text
from .config import PROJECT_ROOT, parse_overrides, resolve
from .data import load_for_profile
from .display import format_duration
from .errors import NotebookFailed
from .estimate import estimate, estimate_line
from .kinds import NEURAL, notebook

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"


def notebooks() -> list[Path]:
    """notebooks/NN_*.ipynb in order: NN (the first two characters) also names the notebook."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def select(only: list[str] | None) -> list[Path]:
    """All notebooks, or those named by stem ("02_bert") or number ("02")."""
    found = notebooks()
    for name in only or []:
        if not any(name in (nb.stem, nb.stem[:2]) for nb in found):
            raise ValueError(f"unknown notebook {name!r}; choose from: {', '.join(nb.stem for nb in found)}")
    return [nb for nb in found if not only or nb.stem in only or nb.stem[:2] in only]


class _Forward:
    """papermill's stdout_file: the kernel's printed lines to the terminal, indented under the notebook's header;
    of a line rewritten with carriage returns only its last state."""

    def __init__(self, out=None, indent: str = "      "):
        self.out, self.indent, self.partial = out or sys.stdout, indent, ""

    def write(self, text: str) -> None:
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            line = line.rsplit("\r", 1)[-1]
            if line.strip():
                self.out.write(f"{self.indent}{line}\n")

    def flush(self) -> None:
        self.out.flush()


class _AfterCtrlC(logging.Filter):
    """Once Ctrl-C has stopped a notebook, what its teardown logs ("Kernel died while waiting for execute reply",
    asyncio's "Task exception was never retrieved") is noise: the command prints one line (cli.main)."""

    stopped = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.stopped


_AFTER_CTRL_C = _AfterCtrlC()


@contextmanager
def _quiet_after_ctrl_c():
    """Ctrl-C (SIGINT) still raises KeyboardInterrupt here, and from then on the teardown's log lines are dropped."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return
    for name in ("papermill", "asyncio"):
        logging.getLogger(name).addFilter(_AFTER_CTRL_C)

    def stop(signum, frame):
        _AFTER_CTRL_C.stopped = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def execute(notebook: Path, target: Path, parameters: dict, *, progress_bar: bool = False) -> None:
    """Execute one notebook with papermill into target, its printed lines forwarded to this process's stdout."""
    # The kernel's own log at CRITICAL: ipykernel >= 7.3 warns at every start that its local TCP link is unencrypted,
    # and after Ctrl-C it logs a traceback of sockets closed under it. A failing cell still reaches us as its error.
    with _quiet_after_ctrl_c():
        pm.execute_notebook(str(notebook), str(target), parameters=parameters, kernel_name="python3",
                            cwd=str(NOTEBOOK_DIR), progress_bar=progress_bar, log_output=False,
                            stdout_file=_Forward(), extra_arguments=["--IPKernelApp.log_level=CRITICAL"])


def notebooks_time_left(stems: list[str], previous: dict[str, float]) -> str:
    """"about 38 min left" from the seconds each notebook took in this run's last execution ("" if unknown)."""
    known = [previous[s] for s in stems if s in previous]
    if not known:
        return ""
    amount = format_duration(sum(known))
    return f"{'at least ' if len(known) < len(stems) else 'about '}{amount} left (timings of the last run)"


def _last_timings(log: Path, seeds: int, finished: list[str]) -> dict[str, float]:
    """Seconds per notebook of the run's last execution, when it started from the same state: the same number of
    training seeds and the same models already finished (`finished`). Otherwise its times say nothing of this one (a
    run that trained everything took 1 h 42 min, with other work beside it, where re-running it on the trained models
    took 6 min, both on a 2-core AMD EPYC; after seeds were added only the new ones train): no estimate."""
    last = read_json(log) if log.exists() else {}
    same = last.get("seeds") == seeds and last.get("finished") == finished
    return dict(last.get("seconds", {})) if same else {}


def first_estimate(prof, raw, chosen: list[Path], finished: list[str], timed: dict[str, float]) -> str:
    """When the last execution timed none of the notebooks that will train here (`timed`): an estimate of the
    training still to do, from one training step of each model measured on this machine (textlab.estimate;
    seconds on a CPU); "" when nothing trains. `raw`: the run's data, loaded already. An estimate is a courtesy:
    if measuring fails, the run goes on without one."""
    stems = {c.stem for c in chosen}
    to_train = {k: sum(f"seed-{s}/{k}" not in finished for s in prof.seeds) for k in NEURAL
                if notebook(k) in stems and notebook(k) not in timed}
    to_train = {k: n for k, n in to_train.items() if n}
    if not to_train:
        return ""
    print("      no earlier run from this state to time from: measuring one training step of each model here ...",
          flush=True)
    try:
        return estimate_line(*estimate(pipeline.prepare(prof, raw), to_train))
    except Exception as e:  # noqa: BLE001  (anything: the run matters, its estimate does not)
        print(f"      no time estimate: measuring failed ({type(e).__name__}: {e})", flush=True)
        return ""


def _finished(run_dir: Path) -> list[str]:
    """The models of the run that are finished (evaluated: their metrics.json), as paths in the run folder."""
    seeds = sorted(f.parent.relative_to(run_dir).as_posix() for f in run_dir.glob("seed-*/*/metrics.json"))
    return seeds + (["ensemble"] if (run_dir / "ensemble" / "metrics.json").exists() else [])


def publishes(profile, run_dir: Path) -> bool:
    """Whether this run is the committed one: the same test as the committed figures/ (runs.figures_dir)."""
    return runs.figures_dir(profile, run_dir) == PROJECT_ROOT / "figures"


_PROGRESS = re.compile(r"\r|\d+%\|")  # tqdm rewrites its line with \r and draws "45%|####"
_WIDGET = "application/vnd.jupyter.widget-view+json"


def _progress(out: dict) -> bool:
    """A progress bar: stderr carrying tqdm updates, or an ipywidgets output."""
    text = "".join(out.get("text", "")) if out.get("output_type") == "stream" else ""
    return bool(out.get("name") == "stderr" and _PROGRESS.search(text)) or _WIDGET in out.get("data", {})


def _strip_paths(value, replacements: list[tuple[str, str]]):
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_strip_paths(v, replacements) for v in value]
    if isinstance(value, dict):
        return {k: v if k.startswith("image/") else _strip_paths(v, replacements) for k, v in value.items()}
    return value


def clean_notebook(nb: dict, root: Path = PROJECT_ROOT, home: Path | None = None) -> dict:
    """An executed notebook as the repository keeps it: its outputs without progress bars or the machine's paths (the
    project root becomes relative, the home "~"), without papermill's injected cell and execution timestamps."""
    home = Path.home() if home is None else home
    replacements = [(f"{root}/", ""), (str(root), "."), (f"{home}/", "~/"), (str(home), "~")]
    nb = copy.deepcopy(dict(nb))
    nb["metadata"] = {k: v for k, v in nb.get("metadata", {}).items() if k not in ("papermill", "widgets")}
    nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb["cells"]:
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k not in ("papermill", "execution")}
        if cell.get("cell_type") == "code":
            cell["outputs"] = [_strip_paths(out, replacements) for out in cell.get("outputs", []) if not _progress(out)]
    return nb


# A block of README.md or docs/*.md that shows a generated file of figures/: "<!-- NAME.md: start -->" ... end.
BLOCK = re.compile(r"(<!-- (\S+\.md): start -->\n)(.*?)(<!-- \2: end -->)", re.S)
PAGES = ("README.md", "docs/*.md")


def refresh_blocks(figures: Path = PROJECT_ROOT / "figures", root: Path = PROJECT_ROOT) -> list[Path]:
    """Paste every generated figures/NAME.md into the blocks of the pages that show it, so that the README and the
    docs always carry the tables and sentences of the run that wrote figures/; returns the pages changed."""
    changed = []
    for page in sorted({p for pattern in PAGES for p in root.glob(pattern)}):
        text = page.read_text()

        def paste(m: re.Match) -> str:
            source = figures / m.group(2)
            return m.group(1) + source.read_text() + m.group(4) if source.exists() else m.group(0)

        new = BLOCK.sub(paste, text)
        if new != text:
            write_text(page, new)
            changed.append(page)
    return changed


def publish(executed: Path, dest: Path) -> Path:
    """Write the cleaned copy of an executed notebook to dest (notebooks/<name>.ipynb), atomically."""
    nb = nbformat.reads(executed.read_text(), as_version=4)
    return write_text(dest, nbformat.writes(nbformat.from_dict(clean_notebook(nb))) + "\n")


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
    _absolute_paths_in_env()
    data = os.path.abspath(data) if data else ""  # notebooks run in notebooks/
    items = parse_overrides(overrides)
    prof = resolve(profile, data, items)  # a bad key or value stops here, before any notebook
    chosen = select(only)
    # The folder's lock, held from before anything is read or deleted until the last notebook ends: a second
    # process (another run, a --fresh) is refused at once, naming this command; the notebooks' kernels work under it.
    with locks.lock(runs.runs_root() / runs.run_name(prof, name)) as folder, locks.alone(folder):
        raw = load_for_profile(prof)
        run_dir = runs.open_folder(prof, raw, get_backbone(prof.backbone), name, fresh)
        return _execute(chosen, prof, run_dir, items, data, raw)


def _execute(chosen: list[Path], prof, run_dir: Path, items: dict, data: str, raw) -> Path:
    """The notebooks, in order, on an opened run folder; timings to run.json; the committed run publishes."""
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    overrides = " ".join(f"{k}={runs.format_value(v)}" for k, v in items.items())
    parameters = {"profile": prof.name, "data": data, "overrides": overrides, "name": run_dir.name}
    log = run_dir / "run.json"
    finished = _finished(run_dir)
    seconds = _last_timings(log, len(prof.seeds), finished)  # of the last run, updated as we go
    first = first_estimate(prof, raw, chosen, finished, seconds)
    for i, nb in enumerate(chosen, 1):
        target = out_dir / nb.name
        left = (first if i == 1 else "") or notebooks_time_left([c.stem for c in chosen[i - 1:]], seconds)
        print(f"[{i}/{len(chosen)}] {nb.stem} (run {run_dir.name}) -> {target}" + (f"; {left}" if left else ""),
              flush=True)
        t0 = time.perf_counter()
        try:
            execute(nb, target, parameters, progress_bar=sys.stderr.isatty() and not os.environ.get("CI"))
        except PapermillExecutionError as e:
            raise NotebookFailed(f"{nb.name} failed in cell {e.exec_count} ({e.ename}: {e.evalue}).\n"
                                 f"The partially executed notebook is kept at {target}") from e
        seconds[nb.stem] = round(time.perf_counter() - t0, 1)
        print(f"      done in {seconds[nb.stem]:.0f} s", flush=True)
        if publishes(prof, run_dir):
            print(f"      outputs -> {publish(target, nb).relative_to(PROJECT_ROOT)} (the committed run)", flush=True)
    write_json(log, {"run": run_dir.name, "profile": prof.name, "seeds": len(prof.seeds), "finished": finished,
                     "seconds": seconds})
    if publishes(prof, run_dir):
        for page in refresh_blocks():
            print(f"      tables and sentences -> {page.relative_to(PROJECT_ROOT)} (the committed run)", flush=True)
    return out_dir
