"""Helpers for the masked language modeling course: what the notebooks import and is not the lesson.

One module per step where a step needs one: ``data`` (01), ``preprocess`` (02), ``collate`` (03), ``train`` and
``masked_head`` (04), ``evaluate`` and ``domain`` (05), ``infer`` and ``interactive`` (06); ``config``, ``assets``,
``runs`` and ``steps`` (the settings, the offline model and text, the run folder, each notebook's inputs), ``plots``,
``checks`` (the learner's code, judged) and ``tryit`` (the exercises' measured answers) serve them all.
"""

import warnings

# Trainer and the guide's data loaders pin memory by default; on a machine without a GPU, torch warns at every loader.
warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true but no accelerator is found.*")
