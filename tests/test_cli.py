"""Errors at the command line and in notebooks: textlab's own errors are one line, anything else keeps its traceback."""

from __future__ import annotations

import re

import pytest

from textlab import cli, errors
from textlab.errors import CheckpointError
from textlab.data import DataError
from textlab.runner import NotebookFailed


def _describe_raises(monkeypatch, exc):
    def describe(args):
        raise exc
    monkeypatch.setattr(cli, "_describe", describe)


@pytest.mark.parametrize("exc, code", [(CheckpointError("ckpt-1 is corrupt"), 2), (DataError("no text column"), 2),
                                       (NotebookFailed("02_bert.ipynb failed"), 1)])
def test_project_error_is_one_line(monkeypatch, capsys, exc, code):
    _describe_raises(monkeypatch, exc)
    assert cli.main(["describe"]) == code
    assert capsys.readouterr().err == f"error: {exc}\n"
    with pytest.raises(type(exc)):  # --debug: the traceback too
        cli.main(["--debug", "describe"])


def test_other_errors_keep_their_traceback(monkeypatch):
    _describe_raises(monkeypatch, RuntimeError("CUDA error: an illegal memory access was encountered"))
    with pytest.raises(RuntimeError, match="illegal memory access"):
        cli.main(["describe"])


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    shell.set_custom_exc((), None)
    InteractiveShell.clear_instance()


def test_notebook_shows_project_errors_as_their_message(shell, capsys):
    errors.show_briefly_in_ipython(shell)
    result = shell.run_cell("from textlab.data import DataError\n"
                            "def load():\n    raise DataError('data.csv has no text column')\nload()")
    assert isinstance(result.error_in_exec, DataError)  # the cell still fails: papermill stops there
    assert capsys.readouterr().out.strip() == "DataError: data.csv has no text column"
    result = shell.run_cell("def step():\n    raise RuntimeError('real bug')\nstep()")
    assert isinstance(result.error_in_exec, RuntimeError)
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # without the colours
    assert "----> 3 step()" in out and "raise RuntimeError('real bug')" in out  # the frames are shown


def test_a_bad_setting_in_a_notebook_parameters_cell_is_one_line(shell, capsys):
    """papermill -p overrides "bert.nope=1" (or a wrong type) reaches resolve() in the kernel: one line, as at the
    command line, not a traceback through config.py."""
    errors.show_briefly_in_ipython(shell)
    for overrides, message in (("bert.nope=1", "SettingError: unknown setting 'bert.nope'; valid keys here: "),
                               ("bert.epochs=abc", "SettingError: override bert.epochs='abc' must be of type int")):
        result = shell.run_cell(f"from textlab.config import resolve\nresolve('smoke', overrides={overrides!r})")
        assert isinstance(result.error_in_exec, errors.SettingError) and isinstance(result.error_in_exec, ValueError)
        out = capsys.readouterr().out.strip()
        assert out.startswith(message) and "\n" not in out


def test_several_settings_after_one_set(monkeypatch):
    seen = {}
    monkeypatch.setattr("textlab.runner.run", lambda profile, only, **kw: seen.update(kw) or "runs/x")
    assert cli.main(["run", "--profile", "smoke", "--set", "bert.epochs=2", "bilstm.lr=1e-3", "--set", "seeds=1"]) == 0
    assert seen["overrides"] == ["bert.epochs=2", "bilstm.lr=1e-3", "seeds=1"]
