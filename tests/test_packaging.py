"""environment.yml installs what pyproject.toml declares, as its first lines promise, for a Python that it allows."""

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_lists_pyprojects_dependencies_for_a_python_it_allows():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name: Requirement(r).specifier
                for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    python = next(d for d in conda if isinstance(d, str) and d.startswith("python="))
    assert SpecifierSet(project["requires-python"]).contains(python.split("=")[1] + ".0")
    pip = [Requirement(r) for d in conda if isinstance(d, dict) for r in d["pip"] if r != "-e ."]
    assert {r.name for r in pip} == set(declared)
    for r in pip:  # the same range, or one version that the range allows (torch, pinned as the Makefile pins it)
        pinned = [s.version for s in r.specifier if s.operator == "=="]
        assert r.specifier == declared[r.name] or pinned and declared[r.name].contains(pinned[0]), r


def test_helpers_modules_import_one_another_without_a_circle():
    import ast
    import graphlib

    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / "helpers").rglob("*.py") if p.name != "__main__.py"}  # an entry point nothing imports
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):  # imports inside functions count too
            if isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                target = ".".join(filter(None, [base, node.module or ""]))
                found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError, naming the circle
