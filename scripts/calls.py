"""Calls into ``helpers/`` from the notebooks' code cells: each ``module.function(...)`` of a module imported from
helpers, and each call of a name imported from helpers (``at_masks(...)``) that the page does not define itself.

    python -m scripts.calls     # per notebook, then the total and the distinct functions
"""

from __future__ import annotations

import ast
import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def code_cells(notebook: Path) -> list[ast.Module]:
    """Each code cell parsed, its shell and magic lines (``!pip``, ``%timeit``) blanked."""
    cells = []
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            blanked = (line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("!", "%")) else line
                       for line in lines)  # the indent kept: a shell line may be the body of an ``if``
            cells.append(ast.parse("\n".join(blanked)))
    return cells


def calls(notebook: Path) -> list[str]:
    """The helpers functions the notebook's code cells call, one entry a call site, as ``module.function``."""
    modules, names, defined = set(), {}, set()
    trees = code_cells(notebook)
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "helpers":
            for alias in node.names:
                if node.module == "helpers":
                    modules.add(alias.asname or alias.name)
                else:
                    names[alias.asname or alias.name] = f"{node.module.removeprefix('helpers.')}.{alias.name}"
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
    found = []
    for node in (n for tree in trees for n in ast.walk(tree) if isinstance(n, ast.Call)):
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in modules:
            found.append(f"{f.value.id}.{f.attr}")
        elif isinstance(f, ast.Name) and f.id in names and f.id not in defined:
            found.append(names[f.id])
    return found


def main() -> int:
    distinct, total = set(), 0
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        found = calls(notebook)
        total += len(found)
        distinct |= set(found)
        print(f"{notebook.stem}: {len(found)}  " + ", ".join(f"{k} x{n}" if n > 1 else k
                                                          for k, n in collections.Counter(found).items()))
    print(f"total: {total} calls, {len(distinct)} distinct functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
