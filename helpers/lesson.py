"""The functions the notebooks define and the package reuses, copied from the cells marked #@save by `make lib`
(scripts/export.py). Edit them on the page, then run `make lib`: `make test` fails while the two differ."""

from __future__ import annotations

import itertools
import math
import os
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration
from helpers.masked_head import at_masks
from torch import nn
from torch.utils.data import DataLoader
from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer, TrainingArguments
from transformers import get_scheduler


# Defined in notebooks/02_preprocess.ipynb
def preprocess_function(examples, tokenizer, text_field):
    """The guide's: each record's text tokenized whole; ELI5's list of answers joined with spaces first."""
    return tokenizer([" ".join(x) if isinstance(x, list) else x for x in examples[text_field]])


# Defined in notebooks/02_preprocess.ipynb
def group_texts(examples, block_size=128):
    """Concatenate each column's token lists and cut them into blocks of block_size, dropping the remainder."""
    result = {}
    for column, lists in examples.items():
        flat = []
        for ids in lists:
            flat.extend(ids)  # each token copied once; the guide's sum() copies the growing list at every record
        usable = len(flat) // block_size * block_size
        result[column] = [flat[i : i + block_size] for i in range(0, usable, block_size)]
    return result


# Defined in notebooks/02_preprocess.ipynb
def guide_group_texts(examples, block_size=128):
    """The guide's group_texts: sum(lists, []) copies the growing list once per record."""
    concatenated = {k: sum(examples[k], []) for k in examples.keys()}
    total_length = len(concatenated[list(examples.keys())[0]]) // block_size * block_size
    return {k: [t[i : i + block_size] for i in range(0, total_length, block_size)] for k, t in concatenated.items()}


# Defined in notebooks/03_collate.ipynb
def word_offsets(tokens, texts):
    """tokens with byte-level spans fixed for the collator's rule: a piece that starts inside the previous one (the
    second byte of "é") is moved to where that one ends; a piece of white space alone gets an empty span."""
    for spans, text in zip(tokens["offset_mapping"], texts):
        end = 0
        for i, (start, stop) in enumerate(spans):
            start = end if start < end <= stop else start
            stop = start if text[start:stop].isspace() else stop
            spans[i] = (start, stop)
            end = max(end, stop)
    return tokens


def preprocess_with_spans(examples, tokenizer, text_field):
    """02's preprocess_function, keeping each token's character span (offset_mapping) for whole-word masking."""
    texts = [" ".join(x) if isinstance(x, list) else x for x in examples[text_field]]
    return word_offsets(tokenizer(texts, return_offsets_mapping=True), texts)


# Defined in notebooks/03_collate.ipynb
def insert_random_mask(batch, data_collator):
    """A batch of rows masked once by data_collator, as the lists a Dataset stores (HF course 7.3)."""
    features = [dict(zip(batch, row)) for row in zip(*batch.values())]
    return {name: values.tolist() for name, values in data_collator(features).items()}


# Defined in notebooks/04_train.ipynb
def perplexity(model, eval_masks, batch_size=64):
    """exp of the mean loss over every picked token of eval_masks, each token counting once."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(eval_masks.with_format("torch"), batch_size=batch_size):
            picked = int((batch["labels"] != -100).sum())
            total += model(**batch).loss.item() * picked
            count += picked
    return math.exp(total / count)


def unigram(train_blocks, tokenizer, vocab_size):
    """Each token's share of the training blocks, add-one smoothed, special tokens left out."""
    counts = torch.bincount(torch.tensor(train_blocks["input_ids"]).flatten(), minlength=vocab_size).double()
    counts[tokenizer.all_special_ids] = 0
    return (counts + 1) / (counts.sum() + vocab_size)


# Defined in notebooks/04_train.ipynb
def guide_trainer(model_checkpoint, train_dataset, eval_dataset, output_dir, mlm_probability=0.15, learning_rate=2e-5,
                  num_train_epochs=3, batch_size=8, seed=42, whole_word_mask=False, masked_head=True, eval_strategy="epoch"):
    """The guide's Trainer: model_checkpoint to train on train_dataset, evaluated on eval_dataset each epoch."""
    tokenizer = AutoTokenizer.from_pretrained(model_checkpoint)
    model = AutoModelForMaskedLM.from_pretrained(model_checkpoint)
    if masked_head:
        model = at_masks(model)  # the course's line
    data_collator = DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm_probability=mlm_probability)
    if whole_word_mask:  # 03's whole-word form of the collator (train_dataset: 03's word blocks)
        data_collator = DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm_probability=mlm_probability,
                                                        whole_word_mask=True, mask_replace_prob=1.0, random_replace_prob=0.0)
    training_args = TrainingArguments(
        output_dir=output_dir,
        eval_strategy=eval_strategy,
        learning_rate=learning_rate,
        num_train_epochs=num_train_epochs,
        weight_decay=0.01,
        per_device_train_batch_size=batch_size,
        seed=seed,
        remove_unused_columns=False,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        processing_class=tokenizer,
    )
    return trainer


# Defined in notebooks/04_train.ipynb
def train_loop(model, train_blocks, collator, *, steps: int, batch_size: int, learning_rate: float,
               weight_decay: float = 0.0, seed: int = 42) -> list[float]:
    """Train ``model`` for ``steps`` steps on ``train_blocks``, each batch masked by ``collator``; each step's loss."""
    several_cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    accelerator = Accelerator(cpu=several_cpu_processes,  # DDP on CPUs (gloo), as under torchrun without a GPU
                              dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=seed))
    loader = DataLoader(train_blocks, batch_size=batch_size, shuffle=True, collate_fn=collator)
    layer_norms = {name for name, module in model.named_modules() if isinstance(module, nn.LayerNorm)}
    decayed, not_decayed = [], []
    for name, parameter in model.named_parameters():
        (not_decayed if name.endswith("bias") or name.rsplit(".", 1)[0] in layer_norms else decayed).append(parameter)
    optimizer = torch.optim.AdamW([{"params": decayed, "weight_decay": weight_decay},
                                   {"params": not_decayed, "weight_decay": 0.0}], lr=learning_rate,
                                  fused=True)  # Trainer's default kernel
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=steps)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()  # dropout on, as in training
    losses = []
    for epoch in itertools.count():
        loader.set_epoch(epoch)  # the sampler draws this epoch's order from seed + epoch
        for batch in loader:
            loss = model(**batch).loss
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            if len(losses) == steps:
                return losses


def without_dropout(model):
    """model with every dropout turned off: its arithmetic then depends on the batches alone."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


# Defined in notebooks/05_evaluate.ipynb
def macro_f1(predictions, labels):
    """Each label's F1, 2 x hits / (predicted + actual), averaged over the labels: a rare label counts as much as a common one."""
    assert len(predictions) == len(labels) > 0, "one prediction per label"
    classes = set(predictions) | set(labels)
    hits = {c: sum(p == l == c for p, l in zip(predictions, labels)) for c in classes}
    return sum(2 * hits[c] / (predictions.count(c) + labels.count(c)) for c in classes) / len(classes)
