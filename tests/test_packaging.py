"""environment.yml (conda) and pyproject.toml must list the same dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req, 1)[0].strip().lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): r for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_name(r): r for r in pip if not r.startswith("-e")}
    assert set(listed) == set(wanted), (f"only in environment.yml: {set(listed) - set(wanted)}; "
                                        f"only in pyproject: {set(wanted) - set(listed)}")
    for name, req in wanted.items():
        if name != "torch":  # the yml pins the CPU build the Makefile installs
            assert listed[name] == req, f"{name}: environment.yml says {listed[name]!r}, pyproject {req!r}"
    make_pins = set(re.findall(r"torch==[\w.+]+", (ROOT / "Makefile").read_text()))
    assert make_pins == {listed["torch"]}, f"Makefile installs {make_pins}, environment.yml {listed['torch']!r}"
    assert "python>=3.11" in env["dependencies"] and project["requires-python"] == ">=3.11"
