"""The catalogue of errors and warnings textlab raises for a problem it can name (bad settings, data,
checkpoints, a failed notebook): the message says what is wrong and what to do, so the command line and notebooks
show that one line, not a traceback. Any other exception is a bug somewhere and keeps its traceback."""

from __future__ import annotations

import sys
import warnings


class TextlabError(Exception):
    """Base of textlab's own errors."""


class SettingError(TextlabError, ValueError):
    """A setting, override or profile name that does not exist or does not hold; the message names it."""


class TextlabWarning(UserWarning):
    """Base of textlab's own warnings: shown as their message (show_warnings_briefly), not with a source line."""


# raised in artifacts.py, checkpoint.py and every module that reads a run folder
class CheckpointError(TextlabError, RuntimeError):
    """A checkpoint or run folder that cannot be used; the message names the file and the problem."""


# raised in config.py
class UnknownSetting(SettingError, KeyError):
    """A setting name that no profile has; a KeyError too, for code that looks settings up."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


# raised in data.py and owndata.py
class DataError(TextlabError, ValueError):
    """Input data that cannot be used; the message says what is wrong and how to fix it."""


# raised in owndata.py and cache.py
class DataWarning(TextlabWarning):
    """Data that can be used but that a user should know about (duplicates, overlap, rare classes, a rebuilt cache)."""


# raised in export.py
class ExportError(TextlabError, RuntimeError):
    """An export that cannot be made (unfinished model, occupied or unwritable folder); the message says why."""


# raised in export.py
class ExportWarning(TextlabWarning):
    """Something the exported folder cannot express exactly; the model card says it too."""


# raised in fonts.py
class PlotWarning(TextlabWarning):
    """A figure cannot show something as written (label names no installed font draws)."""


# raised in runner.py
class NotebookFailed(TextlabError, RuntimeError):
    """A notebook's cell raised: the message names notebook, cell, error and the partial copy."""


# raised in runs.py and locks.py
class RunError(TextlabError, RuntimeError):
    """A run folder that cannot be used as asked; the message names the folder, the problem and the ways on."""


# raised in train.py
class NonFiniteLossError(TextlabError, FloatingPointError):
    """The training loss became NaN or infinite; the message names the step and what to lower."""


# raised in train.py
class OutOfMemoryAdvice(TextlabError, RuntimeError):
    """Out of memory in a training step; the message suggests a smaller micro-batch, same effective batch."""


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning):
    if issubclass(category, TextlabWarning):
        print(f"{category.__name__}: {message}", file=file or sys.stderr)
    else:
        _default(message, category, filename, lineno, file, line)


def show_warnings_briefly() -> None:
    """textlab's warnings as one "DataWarning: message" line, without the file:line and source line Python adds
    (they point into textlab, not at the user's data); every other warning as Python shows it."""
    warnings.showwarning = _show_warning


def _one_line(shell, etype, value, tb, tb_offset=None) -> list[str]:
    stb = [f"{etype.__name__}: {value}"]
    shell._showtraceback(etype, value, stb)  # what IPython shows for any error (in Jupyter: the error output)
    return stb


def show_briefly_in_ipython(shell=None) -> None:
    """In IPython / Jupyter (`shell`: the running one), show textlab's errors as their one-line message instead of a
    traceback through textlab's internals; the cell still fails (papermill stops there). Outside IPython: nothing."""
    # Here, not at the top: 0.04 s on every import of textlab (and `textlab --help`) for notebooks only.
    from IPython import get_ipython  # installed with ipykernel, a dependency

    shell = shell or get_ipython()
    if shell is not None:
        shell.set_custom_exc((TextlabError,), _one_line)
        show_warnings_briefly()
