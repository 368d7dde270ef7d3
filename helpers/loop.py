"""04 train, under the hood: the loop ``Trainer`` runs, in PyTorch with ``accelerate``, with ``Trainer``'s defaults so
the two give the same losses on the same batches (tests/test_loop.py).
"""

from __future__ import annotations

import itertools
import os

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration
from torch import nn
from torch.utils.data import DataLoader
from transformers import get_scheduler


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
    """``model`` with every dropout turned off: its arithmetic then depends on the batches alone."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model
