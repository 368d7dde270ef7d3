"""Helpers for the masked language modeling course.

One module per notebook step: ``data`` (01 load), ``preprocess`` (02), ``collate`` (03),
``train`` (04), ``evaluate`` (05), ``infer`` (06); ``config``, ``assets``, ``runs`` and
``plots`` serve them all. Importing the package is cheap: each module imports what it needs.
"""

__version__ = "0.1.0"
