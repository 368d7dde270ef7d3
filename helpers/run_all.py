"""Run the six notebooks in order with papermill, then print the headline figures (``make run-all``).

    python -m helpers.run_all                         # the tiny profile, offline
    python -m helpers.run_all --profile guide -p learning_rate 3e-5

Executed notebooks go to ``runs/<profile>/notebooks/`` (or ``--output-dir``); the notebooks in
``notebooks/`` are only read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import runs
from .config import (STEP_PARAMETERS, Settings, SettingsError, make_settings, parameter_pairs, parse_command_line,
                     project_root)

NOTEBOOKS = ("01_load", "02_preprocess", "03_collate", "04_train", "05_evaluate", "06_infer")
QUIET = {  # unattended runs: no progress bars in the executed notebooks, widgets also print their answers
    "TQDM_DISABLE": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


def run_all(parameters: dict[str, Any], output_dir: Path | None = None) -> Settings:
    """Execute every notebook with ``parameters`` (none: the profile's values).

    The settings are recorded in the run folder first; each notebook is handed only the parameters its
    cell lists (papermill warns about others) and takes the rest from that record.
    """
    settings = make_settings(**parameters)  # a bad name or value fails here, before any notebook runs
    runs.record_settings(settings)
    output_dir = output_dir or runs.path(settings, "notebooks")
    for name in NOTEBOOKS:
        start = time.perf_counter()
        print(f"{name} ...", end=" ", flush=True)
        run_notebook(name, parameters, output_dir)
        print(f"{time.perf_counter() - start:.1f} s", flush=True)
    return settings


def notebook_parameters(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The ``parameters`` that notebook ``name``'s cell lists: ``profile``, its step's settings, ``run_dir``."""
    listed = ("profile", *STEP_PARAMETERS[name], "run_dir")
    return {k: v for k, v in parameters.items() if k in listed}


def quiet_shutdown_kernel_manager():
    """A kernel manager that does not interrupt a kernel it is shutting down.

    jupyter_client sends SIGINT before the shutdown request; a kernel still busy with its last message then
    logs "KeyboardInterrupt caught in kernel." as an ERROR (seen in 05). nbclient shuts a kernel down only
    after its last cell, and interrupts a cell that times out itself, so that interrupt is not needed.
    """
    from jupyter_client.manager import AsyncKernelManager

    class QuietShutdownKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    return QuietShutdownKernelManager


def run_notebook(name: str, parameters: dict[str, Any], output_dir: Path) -> None:
    """One notebook through papermill, unattended, into ``output_dir``."""
    import papermill

    for key, value in QUIET.items():
        os.environ.setdefault(key, value)
    output_dir.mkdir(parents=True, exist_ok=True)
    import nbformat

    source = project_root() / "notebooks"
    notebook = nbformat.read(source / f"{name}.ipynb", as_version=4)
    notebook.metadata.pop("widgets", None)  # the last run's widget state (its progress bars): this run saves its own
    notebook.metadata.pop("papermill", None)  # the last run's record: papermill writes this run's
    output = output_dir / f"{name}.ipynb"
    papermill.execute_notebook(
        notebook,
        str(output),
        parameters=notebook_parameters(name, parameters),
        cwd=str(source),
        kernel_name="python3",
        progress_bar=False,
        kernel_manager_class=quiet_shutdown_kernel_manager(),
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # not its TCP-transport warning, once a notebook
    )
    # Handed a notebook object, papermill records the whole of it as ``input_path``: name the file instead.
    executed = nbformat.read(output, as_version=4)
    executed.metadata.papermill["input_path"] = f"notebooks/{name}.ipynb"
    nbformat.write(executed, output)


def source_name(settings: Settings) -> str:
    """The text the run really read: the installed corpus, a file, or the dataset (and revision) behind "hub"."""
    if settings.source != "hub":
        return settings.source
    if Path(settings.dataset_name).is_dir():
        return f"the local folder {settings.dataset_name}"
    revision = f" at {settings.dataset_revision}" if settings.dataset_revision else ""
    return f"{settings.dataset_name}{revision} from the Hub"


def headline(settings: Settings, output_dir: Path) -> str:
    """The figures a reader wants after a run, read back from ``metrics.json``."""
    m = runs.read_metrics(settings)
    before, after = m["perplexity_before"], m["perplexity_after"]
    fills = ", ".join(f"{r['token_str']} {r['score']:.3f}" for r in m["fill_mask"])
    return "\n".join(
        [
            f"profile {settings.profile}: {settings.model} on {source_name(settings)}",
            f"perplexity on the fixed {'whole-word ' if settings.whole_word_mask else ''}evaluation masks: {before:.1f} before, {after:.1f} after fine-tuning "
            f"({before / after:.1f}x lower; a unigram table of the training tokens: {m['perplexity_unigram']:.1f})",
            f"accuracy at every picked token: top-1 {m['top1_accuracy_before']:.1%} before, {m['top1_accuracy_after']:.1%} after; "
            f"top-5 {m['top5_accuracy_before']:.1%} before, {m['top5_accuracy_after']:.1%} after",
            *domain_lines(settings, m),
            f"fill-mask, fine-tuned, {m['fill_mask_text']!r}: {fills}",
            f"training: {m['train_steps']} steps in {m['train_seconds']:.1f} s",
            f"executed notebooks: {output_dir}",
            f"model: {settings.run_path / 'model'}",
            f"metrics: {settings.run_path / runs.METRICS}",
        ]
    )


def domain_lines(settings: Settings, m: dict[str, Any]) -> list[str]:
    """05's domain figures for the headline, those the run measured: out of the domain, at the mask, the probe."""
    lines = []
    if "perplexity_ood_before" in m:
        ob, oa = m["perplexity_ood_before"], m["perplexity_ood_after"]
        lines.append(f"out of the domain ({settings.ood_source}): perplexity {ob:.1f} before, {oa:.1f} after ({ob / oa:.1f}x "
                     f"lower; in the domain {m['perplexity_before'] / m['perplexity_after']:.1f}x)")
    if "top1_accuracy_at_mask_before" in m:
        lines.append(f"accuracy at the mask token: top-1 {m['top1_accuracy_at_mask_before']:.1%} before, "
                     f"{m['top1_accuracy_at_mask_after']:.1%} after")
    if m.get("probe_accuracy_before") is not None:
        lines.append(f"{settings.label_field} probe on frozen encoder states: accuracy {m['probe_accuracy_before']:.1%} before, "
                     f"{m['probe_accuracy_after']:.1%} after (majority class {m['probe_majority']:.1%})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default=None, help="tiny (default) or guide")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="a parameter")
    parser.add_argument("--output-dir", type=Path, default=None, help="where executed notebooks go")
    args = parser.parse_args(argv)
    import papermill

    try:
        profile = ["--profile", args.profile] if args.profile else []
        parameters = parse_command_line(profile + parameter_pairs(args.p))  # typed as the settings declare
        settings = run_all(parameters, args.output_dir)
    except SettingsError as err:  # caught before any notebook runs: nothing on disk was touched
        print(f"error: {err}", file=sys.stderr)
        return 2
    except papermill.PapermillExecutionError as err:
        print(f"\nfailed in cell {err.exec_count}: {err.ename}: {err.evalue}", file=sys.stderr)
        return 1
    print()
    print(headline(settings, args.output_dir or runs.path(settings, "notebooks")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
