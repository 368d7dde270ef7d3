"""Helpers for the masked language modeling course: what the notebooks import and is not the lesson. One module per
step where a step needs one (``data`` 01 ... ``infer`` 06); ``config``, ``assets``, ``runs``, ``steps``, ``plots``,
``checks`` and ``tryit`` serve them all.
"""

import warnings

# Trainer and the guide's data loaders pin memory by default; on a machine without a GPU, torch warns at every loader.
warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true but no accelerator is found.*")
