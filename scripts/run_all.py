"""``make run-all``: the six notebooks in order with papermill, then the run's headline figures.

    python -m scripts.run_all                                  # the tiny profile, offline
    python -m scripts.run_all --profile guide -p learning_rate 3e-5

Each notebook is given the settings its ``parameters`` cell lists (the profile's values, or those given) and the
others in its ``overrides`` mapping, so a setting reaches every step. The executed
notebooks go to ``runs/<profile>/notebooks/`` (or ``--output-dir``); ``notebooks/`` is only read.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path
from typing import Any

from helpers import config, runs, steps

NOTEBOOKS = ("01_load", "02_preprocess", "03_collate", "04_train", "05_evaluate", "06_infer")
QUIET = {"TQDM_DISABLE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
         "COURSE_SKIP_TRY_IT": "1"}  # and the Try it variants that train: the learner runs them
# In a kernel, Trainer draws its bar as HTML, which papermill cannot pass on to a terminal: on one, the kernels run here
# draw the text bar Trainer draws outside notebooks (its ProgressCallback, with tqdm's text bar), and leave no names.
TEXT_BARS = ("import tqdm, transformers.trainer, transformers.trainer_callback as callbacks; callbacks.tqdm = tqdm.tqdm; "
             "transformers.trainer.DEFAULT_PROGRESS_CALLBACK = callbacks.ProgressCallback; del tqdm, transformers, callbacks")


def on_terminal() -> bool:
    """Whether both of this process's output streams are a terminal (not CI, not a log)."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def listed(name: str) -> dict[str, Any]:
    """The settings notebook ``name``'s parameters cell lists, with its values."""
    import papermill

    cell = papermill.inspect_notebook(str(config.project_root() / "notebooks" / f"{name}.ipynb"))
    return {k: ast.literal_eval(v["default"]) for k, v in cell.items()}


def notebook_parameters(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """What papermill injects into notebook ``name``: each setting its cell lists (the profile's value unless given), the
    rest in ``overrides``, less what the cell holds already."""
    profile = parameters.get("profile", "tiny")
    cell = listed(name)
    given = {k: v for k, v in parameters.items() if k != "profile"}
    values = {"profile": profile, **{k: given.get(k, config.PROFILES[profile][k]) for k in cell if k not in ("profile", "overrides")},
              "overrides": {k: v for k, v in given.items() if k not in cell}}
    return {k: v for k, v in values.items() if v != cell[k]}


def run_all(parameters: dict[str, Any], output_dir: Path | None = None) -> config.Settings:
    """Execute every notebook with ``parameters`` (none: the profile's values); the settings the last one ran with."""
    settings = config.make_settings(**parameters)  # a bad name or value fails here, before any notebook runs
    steps.refuse_command_line_only(parameters)
    # paths as resolved here, where they were typed: papermill runs each notebook in notebooks/
    parameters = {**parameters, **{k: getattr(settings, k) for k in (*config.PATHS, "run_dir") if k in parameters}}
    output_dir = output_dir or runs.path(settings, "notebooks")
    for name in NOTEBOOKS:
        start = time.perf_counter()
        print(f"{name} ...", end="\n" if on_terminal() else " ", flush=True)
        run_notebook(name, notebook_parameters(name, parameters), output_dir)
        print(f"{time.perf_counter() - start:.1f} s", flush=True)
    return settings


def quiet_shutdown_kernel_manager():
    """A kernel manager that does not interrupt a kernel it is shutting down: a kernel still busy with its last message
    would log "KeyboardInterrupt caught in kernel" as an error."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietShutdownKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    return QuietShutdownKernelManager


def run_notebook(name: str, parameters: dict[str, Any], output_dir: Path) -> None:
    """One notebook through papermill into ``output_dir``: on a terminal, a bar of its cells, the lines they print and,
    unless ``TQDM_DISABLE`` is set (``make notebooks``), Trainer's text bar; elsewhere (CI, a log) quiet."""
    import nbformat
    import papermill

    terminal = on_terminal()
    text_bars = terminal and not os.environ.get("TQDM_DISABLE")  # the kernel's records then hold the text bar too
    for key, value in QUIET.items():
        if not terminal or key == "COURSE_SKIP_TRY_IT":
            os.environ.setdefault(key, value)
    output_dir.mkdir(parents=True, exist_ok=True)
    source = config.project_root() / "notebooks"
    notebook = nbformat.read(source / f"{name}.ipynb", as_version=4)
    for stale in ("widgets", "papermill"):  # the last run's records: this run writes its own
        notebook.metadata.pop(stale, None)
    notebook.cells = [c for c in notebook.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    output = output_dir / f"{name}.ipynb"
    papermill.execute_notebook(notebook, str(output), parameters=parameters, cwd=str(source), kernel_name="python3",
                               progress_bar=terminal and {"desc": name, "leave": False},
                               stdout_file=sys.stdout if terminal else None, stderr_file=sys.stderr if terminal else None,
                               kernel_manager_class=quiet_shutdown_kernel_manager(),
                               extra_arguments=["--IPKernelApp.log_level=ERROR"] + ([f"--IPKernelApp.exec_lines={TEXT_BARS}"] if text_bars else []))
    executed = nbformat.read(output, as_version=4)  # handed a notebook object, papermill records all of it as its input
    executed.metadata.papermill["input_path"] = f"notebooks/{name}.ipynb"
    nbformat.write(executed, output)


def headline(settings: config.Settings) -> str:
    """The figures a reader wants after a run, read back from ``metrics.json``."""
    m = runs.read_metrics(settings)
    lines = [f"profile {settings.profile}: {settings.model} on {settings.dataset_name if settings.source == 'hub' else settings.source}",
             f"perplexity on the fixed masks: {m['perplexity_before']:.1f} before, {m['perplexity_after']:.1f} after "
             f"fine-tuning ({m['perplexity_before'] / m['perplexity_after']:.1f}x lower; unigram table "
             f"{m['perplexity_unigram']:.1f})",
             f"top-1 accuracy at the mask token: {m['top1_accuracy_at_mask_before']:.1%} before, "
             f"{m['top1_accuracy_at_mask_after']:.1%} after",
             f"outside the domain ({settings.ood_source}): perplexity {m['perplexity_ood_before']:.1f} before, "
             f"{m['perplexity_ood_after']:.1f} after"]
    if m.get("classifier_macro_f1"):
        mean = {name: sum(f1) / len(f1) for name, f1 in m["classifier_macro_f1"].items()}
        lines.append(f"{settings.label_field} classifiers, macro-F1 over {len(m['classifier_macro_f1']['base'])} seeds: "
                     f"{mean['base']:.3f} from the base model, {mean['fine-tuned']:.3f} from the fine-tuned one")
    fills = ", ".join(f"{r['token_str']} {r['score']:.3f}" for r in m["fill_mask"])
    lines += [f"fill-mask, fine-tuned, {m['fill_mask_text']!r}: {fills}",
              f"training: {m['train_steps']} steps in {m['train_seconds']:.1f} s",
              f"run folder: {runs.shown(settings.run_path)} (model/, metrics.json, notebooks/)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default=None, help="tiny (default) or guide")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="a setting")
    parser.add_argument("--output-dir", type=Path, default=None, help="where the executed notebooks go")
    args = parser.parse_args(argv)
    import papermill

    try:
        profile = ["--profile", args.profile] if args.profile else []
        parameters = config.parse_command_line(profile + config.parameter_pairs(args.p))
        settings = run_all(parameters, args.output_dir)
    except config.SettingsError as err:  # before any notebook runs: nothing on disk was touched
        print(f"error: {err}", file=sys.stderr)
        return 2
    except papermill.PapermillExecutionError as err:
        print(f"\nfailed in cell {err.exec_count}: {err.ename}: {err.evalue}", file=sys.stderr)
        return 1
    print(f"\n{headline(settings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
