"""04 train: the course's additions to the guide's ``TrainingArguments``, resuming, saving and sharing.

The same training runs outside a notebook, on several GPUs or nodes, or from a stream (``helpers/steps.py``)::

    python -m helpers.train --profile tiny --learning_rate 1e-3
    torchrun --nproc_per_node 2 -m helpers.train
    python -m helpers.train --source big.txt --streaming true --max_steps 5000
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from .. import runs
from ..collate import SeededMasks, make_collator
from ..config import Settings, SettingsError


class _ResumeNoise(logging.Filter):
    """Drops Trainer's wrong warnings on resume: tied decoder weights "missing", fractional save steps "not matching"."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("There were missing keys"):
            return not all(key.endswith(("decoder.weight", "decoder.bias")) for key in re.findall(r"'([^']+)'", message))
        if message.startswith("mtime may not be reliable"):  # then it orders checkpoints by step, as it should
            return False
        if message.startswith("Warning: The following arguments do not match"):
            return not all(re.search(r": 0\.\d+ \(from args\)", line) for line in message.splitlines()[1:])
        return True


for _name in ("transformers.trainer", "transformers.trainer_utils"):
    logging.getLogger(_name).addFilter(_ResumeNoise())


def precision(settings: Settings) -> dict[str, bool]:
    """``bf16``/``fp16`` from ``precision``: "auto" is bf16 or fp16 on a GPU, fp32 on a CPU (bf16 gains little there)."""
    chosen = settings.precision
    if chosen == "auto":
        chosen = "fp32" if not torch.cuda.is_available() else "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if chosen == "fp16" and not torch.cuda.is_available():
        raise SettingsError("precision='fp16' needs a GPU (there is no fp16 autocast on a CPU): use 'bf16' or 'fp32'")
    return {"bf16": chosen == "bf16", "fp16": chosen == "fp16"}


def course_arguments(settings: Settings) -> dict[str, Any]:
    """What the course adds to the guide's ``TrainingArguments`` (04_train says why, one line each)."""
    mixed = precision(settings)
    several_cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    return dict(
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size,
        max_steps=settings.max_steps or -1,
        seed=settings.seed,
        data_seed=settings.seed,
        save_strategy="steps",
        save_steps=0.1,
        save_total_limit=2,
        logging_strategy="steps",
        logging_steps=0.02,
        prediction_loss_only=True,
        remove_unused_columns=False,
        report_to="none",
        **mixed,
        use_cpu=several_cpu_processes or (mixed["bf16"] and not torch.cuda.is_available()),
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def training_arguments(settings: Settings, **changes: Any) -> TrainingArguments:
    """The ``TrainingArguments`` 04_train writes out: the guide's, then the course's additions; ``changes`` on top."""
    guide = dict(
        output_dir=str(runs.path(settings, "checkpoints")),
        eval_strategy="epoch",
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.num_train_epochs,
        weight_decay=settings.weight_decay,
        push_to_hub=False,
    )
    streamed = {"eval_strategy": "steps", "eval_steps": 0.25} if settings.streaming else {}  # a stream has no epochs
    return TrainingArguments(**{**guide, **course_arguments(settings), **streamed, **changes})


UNSUPPORTED_LAUNCHERS = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DeepSpeed"}


def check_launcher() -> None:
    """Refuse, before any work, the sharded launchers whose checkpoints every process must gather."""
    for variable, name in UNSUPPORTED_LAUNCHERS.items():
        if os.environ.get(variable, "").lower() in {"1", "true", "yes"}:
            raise SettingsError(f"{name} is not supported ({variable} is set): its checkpoints must be gathered by every "
                                f"process, which the course does not do. Use data parallelism: `torchrun "
                                f"--nproc_per_node N -m helpers.train` or `accelerate launch --multi_gpu -m helpers.train`")


def make_trainer(settings: Settings, model, tokenizer, train_blocks, eval_masks, **changes: Any) -> Trainer:
    """04_train's ``Trainer``: the training blocks masked afresh each batch (``SeededMasks``), the fixed masks."""
    check_launcher()
    masks = SeededMasks(make_collator(tokenizer, settings), seed=settings.seed)
    return Trainer(model=model, args=training_arguments(settings, **changes), train_dataset=train_blocks,
                   eval_dataset=eval_masks, data_collator=masks, processing_class=tokenizer, callbacks=[masks])


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.rsplit("-", 1)[1])


def last_checkpoint(settings: Settings, base: str) -> str | None:
    """The newest complete checkpoint made with these settings and code, from these blocks and the ``base`` model, to
    resume from (None: from the start); a finished run's of other inputs are removed, an interrupted one's refused
    with the fix unless ``retrain``."""
    folder = runs.path(settings, "checkpoints")
    complete = sorted((c for c in folder.glob("checkpoint-*") if (c / "trainer_state.json").exists()), key=_step)
    made = runs.made_with(settings, "model", base)  # hashes the blocks' record and the base model's files
    same = runs.record(settings, "checkpoints") == made
    if complete and not same or settings.retrain:
        state = json.loads((complete[-1] / "trainer_state.json").read_text()) if complete else {}
        if complete and state["global_step"] < state["max_steps"] and not settings.retrain:
            raise SettingsError(f"{runs.shown(folder)} holds an interrupted run with other settings, inputs or older code: finish "
                                f"it with its own ({runs.shown(folder / runs.RECORD)}), or set retrain=True to start afresh")
        if folder.exists() and int(os.environ.get("RANK", "0")) == 0:
            shutil.rmtree(folder)
            print(f"removed the checkpoints of the earlier run in {runs.shown(folder)}")
        complete = []
    if int(os.environ.get("RANK", "0")) == 0:
        runs.write_json(folder / runs.RECORD, made)
    if complete:
        print(f"resuming from {runs.shown(complete[-1])}")
    return str(complete[-1]) if complete else None


def save(trainer: Trainer, settings: Settings, checkpoint: str | None, output, **figures: float) -> None:
    """The model into the run folder (first process only), pushed with ``push_to_hub``, and the training time into
    ``metrics.json`` unless the run only loaded its finished last checkpoint (where Trainer may take one more step, at
    learning rate 0); ``figures`` join them there."""
    if trainer.is_world_process_zero():
        runs.save(trainer.model, settings, "model", trainer.processing_class)
        if not checkpoint or _step(Path(checkpoint)) < trainer.state.max_steps:
            figures = {"train_steps": min(output.global_step, trainer.state.max_steps),
                       "train_seconds": round(output.metrics["train_runtime"], 1), **figures}
        if figures:
            runs.update_metrics(settings, **figures)
    trainer.accelerator.wait_for_everyone()
    if settings.push_to_hub and trainer.is_world_process_zero():  # after the local copy is safe
        push(settings)


class PushError(RuntimeError):
    """The upload failed; the model stays saved in the run folder, and the message says what happened."""


def push(settings: Settings, api=None) -> str:
    """Upload the saved model folder, not the checkpoints (as ``Trainer.push_to_hub`` would); ``api``: a test's HfApi."""
    folder = runs.path(settings, "model")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        url = api.create_repo(settings.hub_repository, repo_type="model", exist_ok=True)
        api.upload_folder(repo_id=url.repo_id, folder_path=str(folder), repo_type="model",
                          commit_message=f"Masked LM fine-tuned with the course ({settings.profile} profile)")
    except Exception as err:  # re-raised with the local copy's place and the way to retry
        raise PushError(f"push_to_hub to {settings.hub_repository!r} failed: {type(err).__name__}: {err}. The model is "
                        f"saved in {runs.shown(folder)}; fix that (a login: `hf auth login`; HF_HUB_OFFLINE unset; the "
                        f"network), then call train.push(settings) again") from err
    print(f"pushed {runs.shown(folder)} to {url}")
    return str(url)
