"""``make lib``: the notebooks' cells marked ``#@save``, in order, written into ``helpers/lesson.py`` (as d2l's
``d2lbook build lib`` does), so the package runs the page's own code and the lesson has one copy.

    python -m scripts.export           # write helpers/lesson.py
    python -m scripts.export --check   # fail, naming the fix, when it differs from the pages
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "#@save"
LESSON = ROOT / "helpers" / "lesson.py"
HEADER = ('"""The functions the notebooks define and the package reuses, copied from the cells marked #@save by `make lib`\n'
          '(scripts/export.py). Edit them on the page, then run `make lib`: `make test` fails while the two differ."""\n')


def saved_cells(root: Path = ROOT) -> list[tuple[str, str]]:
    """(notebook, source) of every code cell whose first line is ``#@save``, in the notebooks' order."""
    found = []
    for notebook in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            lines = "".join(cell["source"]).splitlines()
            if cell["cell_type"] == "code" and lines and lines[0].strip() == MARK:
                found.append((notebook.name, "\n".join(lines[1:]).strip()))
    return found


def lesson_source(root: Path = ROOT) -> str:
    """The module: the saved cells' imports once, at the top, then each cell under the notebook that defines it."""
    imports, bodies = [], []
    for notebook, source in saved_cells(root):
        body = []
        for line in source.splitlines():
            if line.startswith(("import ", "from ")):
                imports += [line] if line not in imports else []
            else:
                body.append(line)
        bodies.append(f"# Defined in notebooks/{notebook}\n" + "\n".join(body).strip())
    future = "from __future__ import annotations\n\n"
    return HEADER + "\n" + future + "\n".join(sorted(imports, key=lambda line: (line.startswith("from "), line))) + "\n\n\n" + "\n\n\n".join(bodies) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with helpers/lesson.py instead of writing it")
    args = parser.parse_args(argv)
    wanted = lesson_source()
    if args.check:
        if LESSON.read_text() != wanted:
            sys.exit("helpers/lesson.py differs from the notebooks' #@save cells: run `make lib`")
        return 0
    LESSON.write_text(wanted)
    print(f"wrote helpers/lesson.py from {len(saved_cells())} cells marked {MARK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
