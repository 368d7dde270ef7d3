"""An ``evaluate`` module shipped with the course (the Hub's ``accuracy`` is out of reach offline, and takes one guess):
top-k accuracy of ranked guesses, for 05.
"""

import datasets
import evaluate

_DESCRIPTION = "The share of items whose reference is among the first k of its ranked predictions, for each k."
_INPUTS = """
Args:
    predictions (list of list of int): each item's guesses, likeliest first (at least max(k) of them).
    references (list of int): each item's true id.
    k (tuple of int): the cut-offs, default (1, 5).
Returns:
    top{k}_accuracy (float) for each k: 1.0 when every reference is among its first k guesses.
Example:
    >>> metric.compute(predictions=[[3, 7], [5, 2]], references=[7, 5], k=(1, 2))
    {'top1_accuracy': 0.5, 'top2_accuracy': 1.0}
"""


class TopKAccuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("int64")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, k=(1, 5)):
        if not references or len(predictions) != len(references):
            raise ValueError(f"top-k accuracy needs one list of guesses per reference: got {len(predictions)} lists "
                             f"for {len(references)} references")
        short = min(len(p) for p in predictions)
        if short < max(k):
            raise ValueError(f"top-{max(k)} accuracy needs at least {max(k)} guesses per item; one has {short}")
        return {f"top{j}_accuracy": sum(r in p[:j] for p, r in zip(predictions, references)) / len(references) for j in k}
