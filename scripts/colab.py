"""Where the course lives on GitHub: the notebooks' "Open in Colab" badges and their Colab install cell.

One setting, ``REPOSITORY``. After a fork or a move, change it (and pyproject.toml's Repository) and run
``python -m scripts.colab``: it writes the new address into every notebook's badge and install line.
"""

from __future__ import annotations

import re

import nbformat

from helpers.config import project_root

from scripts.run_all import NOTEBOOKS

REPOSITORY = "https://github.com/mlm-course/masked-lm-course"
BRANCH = "main"

BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
INSTALL = re.compile(r'!pip install -q "mlm-course @ git\+[^"]*"')


def badge(notebook: str, repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    """The markdown badge that opens ``notebooks/<notebook>.ipynb`` of the repository in Colab."""
    where = repository.removeprefix("https://github.com/")
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{where}/blob/{branch}/notebooks/{notebook}.ipynb)")


def install_command(repository: str = REPOSITORY) -> str:
    """What the first code cell runs on Colab: the course and the model and text it carries, from GitHub."""
    return f'!pip install -q "mlm-course @ git+{repository}"'


def write_links(repository: str = REPOSITORY, branch: str = BRANCH) -> None:
    """Put the repository's address into every notebook's badge and install line (sources only)."""
    for name in NOTEBOOKS:
        path = project_root() / "notebooks" / f"{name}.ipynb"
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            cell.source = BADGE.sub(lambda _: badge(name, repository, branch), cell.source)
            cell.source = INSTALL.sub(lambda _: install_command(repository), cell.source)
        nbformat.write(notebook, path)


if __name__ == "__main__":
    write_links()
    print(f"badges and install lines now point at {REPOSITORY} ({BRANCH})")
