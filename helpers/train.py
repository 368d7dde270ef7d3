"""04 train: fine-tune a masked LM with ``Trainer``, evaluating on the fixed masks each epoch.

Also a command, so the same training runs outside a notebook (settings as ``--name value``), under
``torchrun`` for data parallelism, and from a stream for text larger than memory::

    python -m helpers.train --profile tiny --learning_rate 1e-3
    torchrun --nproc_per_node 2 -m helpers.train --profile tiny
    python -m helpers.train --source big.txt --streaming true --max_steps 5000
"""

from __future__ import annotations

import argparse
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
from datasets import Dataset, IterableDataset
from transformers import PrinterCallback, Trainer, TrainingArguments, set_seed

from . import assets, data, masked_head, preprocess, progress, runs, steps
from .collate import TrainEvalCollator, make_eval_masks
from .config import PARAMETERS, Settings, SettingsError, made_with, make_settings, parse_value


# Checkpoint rotation warns that file times "may not be reliable" and falls back to step numbers,
# which is what we want anyway; the warning would only clutter the notebook.
logging.getLogger("transformers.trainer_utils").setLevel(logging.ERROR)


def cpu_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX); without, bf16 is emulated, and slower."""
    return any(getattr(torch.cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


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
    if chosen == "bf16" and not torch.cuda.is_available() and not cpu_bf16_units():
        print("precision='bf16': this CPU has no bf16 units (AVX-512 BF16 or AMX), so bf16 is emulated and slower")
    return {"bf16": chosen == "bf16", "fp16": chosen == "fp16"}


def cpu_data_parallel() -> bool:
    """Several processes (torchrun) and no CUDA: Trainer's DDP on the CPU needs ``use_cpu``, which picks gloo."""
    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def training_arguments(settings: Settings, **changes: Any) -> TrainingArguments:
    """The guide's ``TrainingArguments``, plus a seed, mixed precision on a GPU and a loss curve.

    ``changes`` replace any of them (the benchmark turns evaluation and saving off).
    """
    mixed = precision(settings)
    arguments = dict(
        output_dir=str(runs.path(settings, "checkpoints")),
        eval_strategy="steps" if settings.streaming else "epoch",  # a stream has no epochs
        eval_steps=0.25,  # with streaming: at each quarter of max_steps
        eval_on_start=True,  # the base model's loss is the curve's first point
        save_strategy="steps",
        save_steps=0.1,  # a checkpoint every tenth of training: an interrupted run resumes near where it stopped
        save_total_limit=2,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps or -1,  # -1: whole epochs
        weight_decay=settings.weight_decay,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size,
        seed=process_seed(settings),
        data_seed=settings.seed,  # the same batches' order on every process: each takes its share
        logging_strategy="steps",
        logging_steps=0.02,  # a fraction of all steps: 50 points on the loss curve
        prediction_loss_only=True,  # evaluation needs the loss only, not logits over the vocabulary
        remove_unused_columns=False,  # the collator reads offset_mapping (whole words), which the model never sees
        report_to="none",
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=cpu_data_parallel() or (mixed["bf16"] and not torch.cuda.is_available()),  # CPU autocast needs it
        push_to_hub=False,  # pushed explicitly after the local save, which never depends on the network
        disable_tqdm=not progress.enabled(),
        **mixed,
    )
    return TrainingArguments(**{**arguments, **changes})


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

    With ``settings.masked_head`` (the default) and a BERT- or RoBERTa-family model, the model's own forward
    runs the head only where the labels are (``masked_head.install``), so Trainer, autocast and DDP all use it.
    """
    check_launcher()
    if settings.masked_head:
        masked_head.install(model)
    else:
        masked_head.uninstall(model)
    trainer = Trainer(
        model=model,
        args=training_arguments(settings, **changes),
        train_dataset=train_blocks,
        eval_dataset=eval_masks,
        data_collator=TrainEvalCollator(tokenizer, settings, rank=int(os.environ.get("RANK", "0"))),
        processing_class=tokenizer,
    )
    if trainer.args.n_gpu > 1 and masked_head.installed(model):  # one process, several GPUs: nn.DataParallel
        masked_head.uninstall(model)  # its replicas would call the forward bound to the first GPU's model
        print(f"one process on {trainer.args.n_gpu} GPUs (nn.DataParallel) runs the standard forward: "
              f"launch with `torchrun --nproc_per_node {trainer.args.n_gpu} -m helpers.train` for the head at the masks")
    if not progress.enabled():
        trainer.remove_callback(PrinterCallback)  # it prints every log line; the curve shows them better
    return trainer


def process_seed(settings: Settings) -> int:
    """The seed of this process's own random numbers (its dropout): the run's seed plus the process's rank.
    Its masks come from ``TrainEvalCollator``, seeded by batch and rank. One process: the seed itself."""
    return settings.seed + int(os.environ.get("RANK", "0"))


def training_key(settings: Settings) -> dict[str, Any]:
    """The settings that change what training produces; a checkpoint or a saved model made with others is stale."""
    return made_with(settings, "model")


@dataclass
class TrainResult:
    seconds: float
    steps: int
    history: dict[str, list[dict[str, float]]]
    resumed_from: int | None = None  # the checkpoint's step, when this run resumed an interrupted one
    reused: bool = False  # True when a finished run with the same settings was loaded, not retrained
    head_share: float | None = None  # the share of positions the vocabulary head ran at (python -m helpers.train)


def fit(trainer: Trainer, settings: Settings) -> TrainResult:
    """Train, save model and tokenizer into the run folder, record the loss history and the time.

    A finished run with the same settings is loaded rather than retrained (``retrain=True`` forces it);
    an interrupted one resumes from its last complete checkpoint. Under ``torchrun`` every process trains
    on its share of each batch and the first one alone writes to the run folder.
    """
    key = training_key(settings)
    reused = reuse_finished(trainer, settings, key)
    if reused is not None:
        return reused
    with trainer.args.main_process_first(desc="looking for checkpoints"):  # the first process tidies, the rest read
        checkpoint = last_checkpoint(settings, key, tidy=trainer.is_world_process_zero())
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
    save_model(trainer, settings)
    steps = trainer.state.global_step
    history = loss_history(trainer.state.log_history)
    if trainer.is_world_process_zero():
        log = {"settings": key, "steps": steps, "seconds": round(seconds, 1), "history": history}
        runs.write_json(runs.path(settings, "train_log.json"), log)
        runs.update_metrics(settings, train_seconds=round(seconds, 1), train_steps=steps)
    trainer.accelerator.wait_for_everyone()
    resumed_from = int(checkpoint.name.split("-")[1]) if checkpoint else None
    return TrainResult(seconds=seconds, steps=steps, history=history, resumed_from=resumed_from)


def reuse_finished(trainer: Trainer, settings: Settings, key: dict[str, Any]) -> TrainResult | None:
    """Load the run folder's model into ``trainer`` when it was trained with these settings; else None."""
    if settings.retrain or not runs.path(settings, "model").exists():
        return None
    try:
        log = runs.read_json(settings, "train_log.json")
        if log.get("settings") != key:
            return None
        finished = runs.load_model(settings)
    except (runs.MissingArtifactError, runs.DamagedArtifactError) as err:
        print(f"training again: {err}")
        return None
    trainer.model.load_state_dict(finished.state_dict())
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


def last_checkpoint(settings: Settings, key: dict[str, Any], tidy: bool = True) -> Path | None:
    """The newest complete checkpoint of an interrupted run with these settings.

    With ``tidy`` (the one process that writes), stale checkpoints and ones cut off mid-save are removed.
    """
    folder = runs.path(settings, "checkpoints")
    marker = folder / "settings.json"
    stale = settings.retrain or not marker.exists() or json.loads(marker.read_text() or "null") != key
    if stale:
        if tidy:
            shutil.rmtree(folder, ignore_errors=True)
            runs.write_json(marker, key)
        return None
    complete = []
    for checkpoint in folder.glob("checkpoint-*"):
        if (checkpoint / "trainer_state.json").exists():  # Trainer writes it last
            complete.append(checkpoint)
        elif tidy:
            shutil.rmtree(checkpoint, ignore_errors=True)  # cut off mid-save
    return max(complete, key=lambda p: int(p.name.split("-")[1]), default=None)


def save_model(trainer: Trainer, settings: Settings) -> None:
    """A standard checkpoint (``from_pretrained`` and ``pipeline`` load it), written atomically.

    Data-parallel processes hold the same weights: the first one writes them, the others wait.
    """
    if trainer.is_world_process_zero():
        with runs.atomic_path(runs.path(settings, "model")) as tmp:
            trainer.save_model(str(tmp))
            trainer.processing_class.save_pretrained(str(tmp))
            (tmp / runs.MADE_WITH).write_text(json.dumps(training_key(settings), indent=2) + "\n")
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


def push(settings: Settings, api=None) -> str | None:
    """Upload the saved model folder (weights, config, tokenizer) to ``settings.hub_repository``; its URL.

    Not ``Trainer.push_to_hub``: with no ``hub_model_id`` that names the repository after ``output_dir``
    (``checkpoints``) and uploads the checkpoints folder. Without a login or a network, say so and keep
    the local save. ``api`` stands in for ``huggingface_hub.HfApi`` in tests.
    """
    if not settings.push_to_hub:
        print("push_to_hub is off: the model stays in the run folder (set push_to_hub=True to share it)")
        return None
    folder = runs.require(settings, "model")
    try:
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi()
        url = api.create_repo(settings.hub_repository, repo_type="model", exist_ok=True)
        api.upload_folder(repo_id=url.repo_id, folder_path=str(folder), repo_type="model",
                          commit_message=f"Masked LM fine-tuned with the course ({settings.profile} profile)")
    except Exception as err:  # no login, no network, HF_HUB_OFFLINE: all end the same way
        print(
            f"push_to_hub failed ({type(err).__name__}: {err}). The model is saved locally in {folder}; "
            f"log in with `hf auth login` where there is a network and push again (train.push(settings))."
        )
        return None
    print(f"pushed {folder} to {url}")
    return str(url)


STREAM_EVAL_BLOCKS = 256  # streaming: the fixed evaluation masks come from at most this many held-out blocks


def streamed_data(settings: Settings, tokenizer) -> tuple[IterableDataset, Dataset]:
    """Training blocks read lazily from the corpus, and evaluation masks from its first held-out blocks."""
    splits = data.stream_split(data.stream_corpus(settings), settings)
    train_blocks = preprocess.stream_blocks(splits["train"], tokenizer, settings)
    test_blocks = Dataset.from_list(list(preprocess.stream_blocks(splits["test"], tokenizer, settings).take(STREAM_EVAL_BLOCKS)))
    if len(test_blocks) == 0:
        raise preprocess.BlocksError(f"the held-out records yield no block of {settings.block_size} tokens: "
                                     f"use a smaller block_size, a larger test_size or more text")
    # shuffled through a buffer, as a stream allows; the seed makes the order repeatable
    return train_blocks.shuffle(seed=settings.seed, buffer_size=10_000), make_eval_masks(test_blocks, tokenizer, settings)


def run(settings: Settings, share: bool = True) -> TrainResult:
    """Notebook 04 as one call: load, train, save, and with ``share`` push if asked (the first process only).

    With ``streaming`` the blocks come straight from the corpus, never all in memory, not from notebooks 01-03.
    """
    check_launcher()  # before any input is built
    tokenizer = assets.load_tokenizer(settings.model)
    model = assets.load_model(settings.model)
    if settings.streaming:
        train_blocks, eval_masks = streamed_data(settings, tokenizer)
    else:  # from the run folder, or built by notebooks 01-03's helpers where missing or made with other settings
        train_blocks = steps.blocks(settings, tokenizer)["train"]
        eval_masks = steps.eval_masks(settings, tokenizer)
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
    parser = argparse.ArgumentParser(description="Fine-tune a masked LM with the course's settings (notebook 04).")
    parser.add_argument("--profile", default="tiny")
    for name in PARAMETERS:
        if name != "profile":
            parser.add_argument(f"--{name}", default=None, help=f"override the profile's {name}")
    args = vars(parser.parse_args(argv))
    overrides = {k: parse_value(v) for k, v in args.items() if k != "profile" and v is not None}
    try:
        settings = make_settings(args["profile"], **overrides)
        if int(os.environ.get("RANK", "0")) == 0:
            runs.record_settings(settings)  # notebooks 05 and 06 then carry on with this model's settings
        result = run(settings)
    except (SettingsError, assets.AssetError, runs.MissingArtifactError, runs.DamagedArtifactError,
            data.CorpusError, preprocess.BlocksError) as err:
        sys.exit(f"error: {err}")  # the message says what to fix; a traceback would bury it
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    head = f"; the vocabulary head ran at {result.head_share:.1%} of the positions" if result.head_share else ""
    print(f"process {rank} of {world}: {result.steps} steps in {result.seconds:.1f} s; model in {runs.path(settings, 'model')}{head}")


if __name__ == "__main__":
    main()
