"""An ``evaluate`` module shipped with the course (the Hub's ``accuracy`` and ``f1`` are out of reach offline): accuracy
and macro-F1, each class counting once however rare, for 05's probe and classifiers.
"""

import datasets
import evaluate

_DESCRIPTION = "Accuracy, and macro-F1: the unweighted mean over classes of 2 * precision * recall / (precision + recall)."
_INPUTS = """
Args:
    predictions (list of int): each item's predicted class.
    references (list of int): each item's true class.
Returns:
    accuracy (float): the share of items predicted right.
    macro_f1 (float): the mean F1 over the classes that occur in references or predictions (0 for a class never hit).
Example:
    >>> metric.compute(predictions=[0, 0, 1, 1], references=[0, 1, 1, 1])
    {'accuracy': 0.75, 'macro_f1': 0.7333333333333334}
"""


class LabelAccuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        if not references or len(predictions) != len(references):
            raise ValueError(f"need one prediction per reference: got {len(predictions)} for {len(references)}")
        pairs = list(zip(predictions, references))
        f1s = []
        for c in sorted(set(predictions) | set(references)):
            hits = sum(p == r == c for p, r in pairs)
            predicted, actual = sum(p == c for p in predictions), sum(r == c for r in references)
            f1s.append(2 * hits / (predicted + actual))  # = 2PR / (P + R); 0 when the class is never hit
        return {"accuracy": sum(p == r for p, r in pairs) / len(pairs), "macro_f1": sum(f1s) / len(f1s)}
