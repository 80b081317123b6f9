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


def _imports(path: Path) -> set[str]:
    """The textlab modules `path` imports, anywhere in it (textlab.models.x counts as textlab.models)."""
    import ast

    package = ["textlab"] + ([path.parent.name] if path.parent.name != "textlab" else [])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            parts = base + (node.module.split(".") if node.module else [])
            if parts[:1] != ["textlab"]:
                continue
            names = [parts + [a.name] for a in node.names]  # a module or a name in one: trimmed to modules below
            found |= {".".join(n[:3] if n[1:2] == ["models"] else n[:2]) for n in names}
        elif isinstance(node, ast.Import):
            found |= {".".join(a.name.split(".")[:2]) for a in node.names if a.name.startswith("textlab.")}
    return found


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


# textlab's modules by layer, lowest first: a module imports from its own layer or a lower one, never a higher one.
# A new module is placed here (the test fails until it is); docs/profiles.md's layout lists the same layers.
LAYERS = {
    "foundation": "errors kinds config stats dataset backbones models models.bilstm models.meta_mlp artifacts "
                  "checkpoint display evaluate fonts locks cache",
    "parts": "owndata data tokenization batching factory describe hardware overview runs ensemble ensemble_choice "
             "models.tfidf plots tuning seeds train",
    "orchestration": "pipeline ensemble_build compare",
    "uses of a run": "reports card estimate predict export",
    "front": "runner cli __main__ textlab",
}


def _graph() -> dict[str, set[str]]:
    graph = {_module(p): _imports(p) - {_module(p)} for p in (ROOT / "textlab").rglob("*.py")}
    return {m: {d if d in graph else d.rsplit(".", 1)[0] for d in deps} for m, deps in graph.items()}


def test_the_package_imports_in_layers_without_a_circle():
    graph = _graph()
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for dep in sorted(graph.get(m, ())):
            visit(dep)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)
    layer = {("textlab." + m if m != "textlab" else m): i for i, names in enumerate(LAYERS.values())
             for m in names.split()}
    assert set(layer) == set(graph), (f"place these modules in LAYERS: {sorted(set(graph) - set(layer))}; "
                                      f"gone: {sorted(set(layer) - set(graph))}")
    upward = [f"{m} ({list(LAYERS)[layer[m]]}) imports {d} ({list(LAYERS)[layer[d]]})"
              for m, deps in graph.items() for d in deps if m != "textlab" and layer[d] > layer[m]]
    assert not upward, "imports from a higher layer: " + "; ".join(sorted(upward))


def test_model_kinds_are_listed_in_one_place():
    """textlab.kinds is the one list: no other module spells a tuple, list or set of kind names."""
    spelled = re.compile(r"""[\(\[\{]\s*["'](bert|bilstm|tfidf)["']\s*,\s*["'](bert|bilstm|tfidf|ensemble)["']""")
    for path in (ROOT / "textlab").rglob("*.py"):
        if path.name != "kinds.py":
            hits = [line.strip() for line in path.read_text().splitlines() if spelled.search(line)]
            assert not hits, f"{path.relative_to(ROOT)} lists model kinds itself: {hits}"


def test_constraints_pin_every_dependency_and_what_a_manifest_records():
    """constraints.txt (make lock) pins each dependency at a version its range admits, torch aside (the Makefile pins
    it, replaceable by a CUDA build); make installs with it, so the versions a run's manifest records are the pins."""
    from packaging.requirements import Requirement

    from textlab.runs import versions

    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = {_name(line): line.split("==")[1] for line in lines if line and not line.startswith("#")}
    assert all("==" in line for line in lines if line and not line.startswith("#"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name = _name(req)
        if name == "torch":
            assert "torch" not in pins
            continue
        assert name in pins, f"constraints.txt does not pin {name}: run make lock"
        assert Requirement(req).specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {req}"
    recorded = {k: v for k, v in versions().items() if k not in ("python", "torch")}
    assert recorded == {k: pins[_name(k)] for k in recorded}, "this environment is not the pinned one: run make"
    assert "pip install -q -c constraints.txt" in (ROOT / "Makefile").read_text()


def test_private_apis_textlab_relies_on_still_exist():
    """Each private API textlab keeps, with its reason beside the call: a library upgrade that drops one fails here,
    by name, instead of silently changing what a run does."""
    import torch
    from accelerate.state import AcceleratorState
    from IPython.core.interactiveshell import InteractiveShell

    assert callable(getattr(torch.cpu, "_is_avx512_bf16_supported", None))  # hardware.cpu_bf16_path: bf16 or fp32
    assert callable(getattr(torch.cpu, "_is_amx_tile_supported", None))  # the same
    assert callable(getattr(AcceleratorState, "_reset_state", None))  # hardware.make_accelerator: precision per model
    assert callable(getattr(InteractiveShell, "_showtraceback", None))  # errors._one_line: one-line errors in Jupyter
