"""04 train: fine-tune a masked LM with ``Trainer``, evaluating on the fixed masks each epoch.

Also a command, so the same training runs outside a notebook (settings as ``--name value``, typed and
explained by ``--help``), under ``torchrun`` for data parallelism, and from a stream for text larger than memory::

    python -m helpers.train --profile tiny --learning_rate 1e-3
    torchrun --nproc_per_node 2 -m helpers.train --profile tiny
    python -m helpers.train --source big.txt --streaming true --max_steps 5000
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import IterableDataset
from transformers import PrinterCallback, Trainer, TrainingArguments, set_seed

from . import assets, data, masked_head, preprocess, progress, runs, steps
from .collate import TrainEvalCollator
from .config import Settings, SettingsError, make_settings, parse_command_line

# Checkpoint rotation warns that file times "may not be reliable" and falls back to step numbers,
# which is what we want anyway; the warning would only clutter the notebook.
logging.getLogger("transformers.trainer_utils").setLevel(logging.ERROR)


def precision(settings: Settings) -> dict[str, bool]:
    """``TrainingArguments``' bf16/fp16 from ``settings.precision``.

    "auto": bf16 on a GPU that has it, fp16 on an older one, fp32 on a CPU, where bf16 was measured to gain
    little on the tiny model (``make bench``'s bf16 rows); "bf16" asks for it anywhere, the CPU included.
    """
    chosen = settings.precision
    if chosen == "auto":
        if not torch.cuda.is_available():
            return {"bf16": False, "fp16": False}
        chosen = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if chosen == "fp16" and not torch.cuda.is_available():
        raise SettingsError("precision='fp16' needs a GPU (accelerate has no fp16 autocast on a CPU): use 'bf16' or 'fp32'")
    return {"bf16": chosen == "bf16", "fp16": chosen == "fp16"}


def training_arguments(settings: Settings, **changes: Any) -> TrainingArguments:
    """The guide's ``TrainingArguments``, plus a seed, mixed precision on a GPU and a loss curve.

    ``changes`` replace any of them (the benchmark turns evaluation and saving off).
    """
    mixed = precision(settings)  # {"bf16": ..., "fp16": ...}
    several_cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    args = TrainingArguments(
        # The guide's arguments, with the profile's values:
        output_dir=str(runs.path(settings, "checkpoints")),
        eval_strategy="steps" if settings.streaming else "epoch",  # a stream has no epochs: with streaming, steps
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.num_train_epochs,
        weight_decay=settings.weight_decay,
        push_to_hub=False,  # pushed explicitly after the local save, which never depends on the network
        # What the course adds, and why:
        per_device_train_batch_size=settings.batch_size,  # a setting (the guide keeps Trainer's 8)
        per_device_eval_batch_size=settings.eval_batch_size,  # no gradients to keep: a larger batch fits
        max_steps=settings.max_steps or -1,  # a setting; -1: whole epochs
        eval_steps=0.25,  # with streaming: an evaluation at each quarter of max_steps
        eval_on_start=True,  # the base model's loss is the curve's first point
        save_strategy="steps",  # checkpoints during training, not only at its end:
        save_steps=0.1,  # one every tenth of training, so an interrupted run resumes near where it stopped
        save_total_limit=2,  # the last two only: a disk is not filled by a long run
        seed=settings.seed + int(os.environ.get("RANK", "0")),  # each process its own dropout; masks: the collator
        data_seed=settings.seed,  # the same batches' order on every process: each takes its share
        logging_strategy="steps",  # the loss curve: a point every
        logging_steps=0.02,  # fiftieth of all steps
        prediction_loss_only=True,  # evaluation needs the loss only, not logits over the vocabulary
        remove_unused_columns=False,  # the collator reads offset_mapping (whole words), which the model never sees
        bf16=mixed["bf16"],  # mixed precision on a GPU: half the memory, faster; fp32 on a CPU
        fp16=mixed["fp16"],  # on a GPU without bf16
        report_to="none",  # no experiment tracker is assumed
        dataloader_pin_memory=torch.cuda.is_available(),  # pinned memory helps copies to a GPU only
        use_cpu=several_cpu_processes or (mixed["bf16"] and not torch.cuda.is_available()),  # DDP on CPUs (gloo), CPU autocast
        disable_tqdm=not progress.enabled(),  # no bars in unattended runs (make sets TQDM_DISABLE)
    )
    return dataclasses.replace(args, **changes) if changes else args


UNSUPPORTED_LAUNCHERS = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DeepSpeed"}


def check_launcher() -> None:
    """Refuse, before any work, the sharded launchers whose saving the course does not do (every rank must gather)."""
    for variable, name in UNSUPPORTED_LAUNCHERS.items():
        if os.environ.get(variable, "").lower() in {"1", "true", "yes"}:
            raise SettingsError(
                f"{name} is not supported by the course's training ({variable} is set): its checkpoints must be "
                f"gathered by every process, which the course does not do. Use data parallelism instead: "
                f"`torchrun --nproc_per_node N -m helpers.train` or `accelerate launch --multi_gpu`"
            )


def make_trainer(settings: Settings, model, tokenizer, train_blocks, eval_masks, **changes: Any) -> Trainer:
    """``Trainer`` over the training blocks (masked afresh each batch) and the fixed evaluation masks.

    With ``settings.masked_head`` (the default), load the model with ``assets.load_model(name, at_masks=True)``:
    for the BERT and RoBERTa families its class runs the head only where the labels are (helpers/masked_head.py).
    """
    check_launcher()
    fast_class = masked_head.model_class(model.config)
    if fast_class is not None and settings.masked_head != isinstance(model, fast_class):
        print(f"masked_head={settings.masked_head}, but the model is a {type(model).__name__}, which runs the head "
              f"{'at the masks' if isinstance(model, fast_class) else 'at every position'} (the same loss): for the "
              f"other, load it with assets.load_model(settings.model, at_masks=settings.masked_head)")
    if not isinstance(model, fast_class or ()):
        # its own loss is a per-batch mean: Trainer must scale it under gradient accumulation
        model.accepts_loss_kwargs = False
    trainer = Trainer(
        model=model,
        args=training_arguments(settings, **changes),
        train_dataset=train_blocks,
        eval_dataset=eval_masks,
        data_collator=TrainEvalCollator(tokenizer, settings, rank=int(os.environ.get("RANK", "0"))),
        processing_class=tokenizer,
    )
    if not progress.enabled():
        trainer.remove_callback(PrinterCallback)  # it prints every log line; the curve shows them better
    return trainer


def trainer_losses(settings: Settings, model, tokenizer, train_blocks, steps: int) -> list[float]:
    """A short ``Trainer`` run from ``model``: ``steps`` steps logged one by one, no evaluation and no checkpoint."""
    with tempfile.TemporaryDirectory(prefix="trainer-") as scratch:
        trainer = make_trainer(settings, model, tokenizer, train_blocks, None, output_dir=scratch, max_steps=steps,
                               logging_steps=1, eval_strategy="no", eval_on_start=False, save_strategy="no",
                               bf16=False, fp16=False)  # fp32, as the plain loop runs
        trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@dataclass
class TrainResult:
    seconds: float
    steps: int
    history: dict[str, list[dict[str, float]]]
    resumed_from: int | None = None  # the checkpoint's step, when this run resumed an interrupted one
    reused: bool = False  # True when a finished run with the same settings was loaded, not retrained
    head_share: float | None = None  # the share of positions the vocabulary head ran at (python -m helpers.train)


def fit(trainer: Trainer, settings: Settings) -> TrainResult:
    """Train, save model, tokenizer and loss history under these settings' key, and record the time.

    A finished run with the same settings is loaded rather than retrained (``retrain=True`` forces it);
    an interrupted one resumes from its last complete checkpoint. Under ``torchrun`` every process trains
    on its share of each batch and the first one alone writes to the run folder.
    """
    if runs.path(settings, "model").exists() and not settings.retrain:
        try:
            return reuse(trainer, settings)
        except (runs.DamagedArtifactError, runs.MissingArtifactError) as err:
            print(f"the saved model cannot be reused ({err}): training again, to replace it")
    folder = runs.path(settings, "checkpoints")
    if settings.retrain and trainer.is_world_process_zero():
        shutil.rmtree(folder, ignore_errors=True)  # this key's own checkpoints: retrain starts afresh
    trainer.accelerator.wait_for_everyone()
    checkpoint = last_checkpoint(folder)
    if checkpoint is not None:
        trainer.args.eval_on_start = False  # the curve already has its starting point
        if trainer.is_world_process_zero():
            with_current_names(checkpoint, trainer.model)
        trainer.accelerator.wait_for_everyone()
        if not isinstance(trainer.train_dataset, IterableDataset):  # a stream replays its skipped batches instead
            # one batch a step (the course never accumulates gradients): masks go on as they would have
            trainer.data_collator.batches = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
        print(f"resuming the interrupted run from {checkpoint.name}")
    # Trainer seeds once, when it is made; seed again so that whatever ran since (a notebook cell, a benchmark's
    # dropout) leaves training as it would be from a script. A resumed run restores its checkpoint's RNG instead.
    set_seed(trainer.args.seed)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - start
    steps = trainer.state.global_step
    history = loss_history(trainer.state.log_history)
    save_model(trainer, settings, {"steps": steps, "seconds": round(seconds, 1), "history": history})
    if trainer.is_world_process_zero():  # a new model: figures of the one it replaces (retrain) are not its own
        runs.write_json(runs.path(settings, runs.METRICS), {})
        runs.update_metrics(settings, train_seconds=round(seconds, 1), train_steps=steps)
    trainer.accelerator.wait_for_everyone()
    resumed_from = int(checkpoint.name.split("-")[1]) if checkpoint else None
    return TrainResult(seconds=seconds, steps=steps, history=history, resumed_from=resumed_from)


def reuse(trainer: Trainer, settings: Settings) -> TrainResult:
    """Load the model trained with these settings into ``trainer``, with its recorded loss history."""
    log = runs.read_json(settings, "train_log.json")
    trainer.model.load_state_dict(runs.load_model(settings).state_dict())
    if trainer.is_world_process_zero():
        runs.update_metrics(settings, train_seconds=log["seconds"], train_steps=log["steps"])
        runs.current(settings)
    print(f"already trained with these settings ({log['steps']} steps): loaded that model; set retrain=True to train again")
    return TrainResult(seconds=log["seconds"], steps=log["steps"], history=log["history"], reused=True)


def with_current_names(checkpoint: Path, model) -> None:
    """Rewrite a checkpoint's weights under the model's own tensor names, so that resuming restores them all.

    ``save_pretrained`` writes a model under the names its checkpoint had (SPLADE-tiny's LayerNorm ``gamma``
    and ``beta``), which ``from_pretrained`` renames on load; Trainer's resume reads the file by name and would
    skip those tensors, leaving them at their pretrained values. ``from_pretrained`` reads it right; its state
    dict, every tensor under the name the model uses, replaces the file in one rename.
    """
    from safetensors import safe_open

    weights = checkpoint / "model.safetensors"
    if not weights.exists():
        return
    with safe_open(str(weights), framework="pt") as stored:
        names = set(stored.keys())
    if names <= set(model.state_dict()):
        return
    from safetensors.torch import save_file

    renamed = type(model).from_pretrained(str(checkpoint)).state_dict()
    tensors = {name: tensor.detach().clone().contiguous() for name, tensor in renamed.items()}  # tied ones too
    with tempfile.TemporaryDirectory(dir=checkpoint) as tmp:
        save_file(tensors, str(Path(tmp) / weights.name), metadata={"format": "pt"})
        os.replace(Path(tmp) / weights.name, weights)


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint of an interrupted run (Trainer writes ``trainer_state.json`` last)."""
    complete = [c for c in folder.glob("checkpoint-*") if (c / "trainer_state.json").exists()]
    return max(complete, key=lambda p: int(p.name.split("-")[1]), default=None)


def save_model(trainer: Trainer, settings: Settings, log: dict[str, Any]) -> None:
    """A standard checkpoint (``from_pretrained`` and ``pipeline`` load it) with its loss history, written atomically.

    Data-parallel processes hold the same weights: the first one writes them, the others wait.
    """
    if trainer.is_world_process_zero():
        with runs.atomic_path(runs.path(settings, "model")) as tmp:
            trainer.save_model(str(tmp))
            trainer.processing_class.save_pretrained(str(tmp))
            (tmp / "made_with.json").write_text(json.dumps(runs.made_with(settings, "model"), indent=2) + "\n")
            (tmp / "train_log.json").write_text(json.dumps(log, indent=2) + "\n")
    trainer.accelerator.wait_for_everyone()


def loss_history(log_history: list[dict[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """Trainer's log split into the training curve and the evaluation points."""
    train = [{"step": e["step"], "epoch": e["epoch"], "loss": e["loss"]} for e in log_history if "loss" in e]
    evals = [{"step": e["step"], "epoch": e["epoch"], "loss": e["eval_loss"]} for e in log_history if "eval_loss" in e]
    return {"train": train, "eval": evals}


def curve_reading(history: dict[str, list[dict[str, float]]]) -> str:
    """The last evaluation loss against the last training loss, in a sentence (04's loss curves)."""
    train, evals = history["train"], history["eval"]
    if not train or not evals:
        return "no loss was logged: the run was too short for a training point and an evaluation"
    t, e = train[-1]["loss"], evals[-1]["loss"]
    where = "below" if e < t else "above"
    first = evals[0]
    start = "before any step" if first["step"] == 0 else f"at step {first['step']:.0f}"
    return (f"last evaluation loss {e:.3f} (step {evals[-1]['step']:.0f}), {where} the last training loss {t:.3f} "
            f"(step {train[-1]['step']:.0f}); the first evaluation, {start}, was {first['loss']:.3f}")


class PushError(RuntimeError):
    """The upload failed; the model stays saved in the run folder, and the message says what happened."""


def push(settings: Settings, api=None) -> str | None:
    """Upload the saved model folder (weights, config, tokenizer) to ``settings.hub_repository``; its URL.

    Not ``Trainer.push_to_hub``: with no ``hub_model_id`` that names the repository after ``output_dir``
    (``checkpoints``) and uploads the checkpoints folder. A failure raises ``PushError`` with the Hub's own
    error; the local save is kept. ``api`` stands in for ``huggingface_hub.HfApi`` in tests.
    """
    if not settings.push_to_hub:
        print("push_to_hub is off: the model stays in the run folder (set push_to_hub=True to share it)")
        return None
    folder = runs.require(settings, "model")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        url = api.create_repo(settings.hub_repository, repo_type="model", exist_ok=True)
        api.upload_folder(repo_id=url.repo_id, folder_path=str(folder), repo_type="model",
                          commit_message=f"Masked LM fine-tuned with the course ({settings.profile} profile)")
    except Exception as err:  # re-raised with the local copy's place and the way to retry
        raise PushError(
            f"push_to_hub to {settings.hub_repository!r} failed: {type(err).__name__}: {err}. The model is saved "
            f"locally in {folder}; fix that (a login: `hf auth login`; HF_HUB_OFFLINE unset; the network) and "
            f"push again with train.push(settings)"
        ) from err
    print(f"pushed {folder} to {url}")
    return str(url)


def finetuned(settings: Settings):
    """04_train's fine-tuned model for these settings: from the run folder, or trained here first (05, 06)."""
    if not runs.path(settings, "model").exists():
        start = time.perf_counter()
        run(settings, share=False)
        print(f"the run folder had no model trained with these settings: trained it with 04_train's helpers "
              f"in {time.perf_counter() - start:.1f} s")
    runs.current(settings)
    return runs.load_model(settings)


def run(settings: Settings, share: bool = True) -> TrainResult:
    """Notebook 04 as one call: load, train, save, and with ``share`` push if asked (the first process only).

    With ``streaming`` the blocks come straight from the corpus, never all in memory, not from notebooks 01-03.
    """
    check_launcher()  # before any input is built
    tokenizer = assets.load_tokenizer(settings.model)
    model = assets.load_model(settings.model, at_masks=settings.masked_head)
    train_blocks, eval_masks = steps.training_data(settings, tokenizer)
    trainer = make_trainer(settings, model, tokenizer, train_blocks, eval_masks)
    count = masked_head.HeadCount(model) if masked_head.supported(model) else None
    result = fit(trainer, settings)
    if count is not None:
        result.head_share = count.share()
        count.remove()
    if share and trainer.is_world_process_zero():
        push(settings)
    return result


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        settings = make_settings(**parse_command_line(argv))
        if int(os.environ.get("RANK", "0")) == 0:
            runs.record_settings(settings)  # notebooks 05 and 06 then carry on with this model's settings
        result = run(settings)
    except (SettingsError, assets.AssetError, runs.MissingArtifactError, runs.DamagedArtifactError,
            data.CorpusError, preprocess.BlocksError, PushError) as err:
        sys.exit(f"error: {err}")  # the message says what to fix; a traceback would bury it
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    head = f"; the vocabulary head ran at {result.head_share:.1%} of the positions" if result.head_share else ""
    print(f"process {rank} of {world}: {result.steps} steps in {result.seconds:.1f} s; model in {runs.path(settings, 'model')}{head}")


if __name__ == "__main__":
    main()
