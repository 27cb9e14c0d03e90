"""IN-9 metrics as a local `evaluate` metric: accuracy per variant with Wilson CI, BG-gap with a
paired bootstrap CI, the background-reliance extras, and optionally the challenge metrics.

Thin over ``evaluator.metrics`` (the package's own pure functions), so the numbers are the ones ``in9-eval``
writes. Load it offline with ``evaluate.load("<path>/in9_metric.py")``.
"""

# One import per line: evaluate's dependency scanner misreads "import a, b".
import datasets
import evaluate

from evaluator import metrics

_CITATION = """@inproceedings{xiao2021noise,
  title     = {Noise or Signal: The Role of Image Backgrounds in Object Recognition},
  author    = {Kai Yuanqing Xiao and Logan Engstrom and Andrew Ilyas and Aleksander Madry},
  booktitle = {International Conference on Learning Representations},
  year      = {2021}
}"""

_DESCRIPTION = """IN-9 backgrounds-challenge metrics. Each example is one prediction on one IN-9 variant:
its IN-9 prediction (0-8, or -1 for an ImageNet class outside IN-9, which counts as wrong), its label, the
variant name (original, mixed_same, mixed_rand, ...) and the id of the foreground it shows (pairs Mixed-Same
with Mixed-Rand rows for the BG-gap bootstrap; the image id for non-mixed variants)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: IN-9 class index per example (-1 = unmapped, always wrong).
    references: IN-9 label per example.
    variants: the variant (config) name per example.
    fg_image_ids: the foreground image id per example (pairs the mixed variants).
    challenge_labels, challenge_vulnerable, challenge_bg_class_fooled: optional per-foreground challenge
        outcomes (the columns of challenge.parquet); when given, the result has a "challenge" block.
Returns:
    The "metrics" block of in9-eval's results.json: {"accuracy": {variant: {"value", "ci95", "correct",
    "count", "per_class"}}, "bg_gap": {"value", "ci95", "n_pairs"}, "bg_reliance": {...}
    [, "challenge": {...}]}.
Examples:
    >>> metric = evaluate.load("hub_cards/metric/in9_metric.py")
    >>> out = metric.compute(predictions=[0, 1], references=[0, 0], variants=["original"] * 2,
    ...                      fg_image_ids=["a", "b"])
    >>> out["accuracy"]["original"]["value"]
    0.5
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class In9Metric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int64"),
                    "references": datasets.Value("int64"),
                    "variants": datasets.Value("string"),
                    "fg_image_ids": datasets.Value("string"),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2006.09994"],
        )

    def _compute(
        self,
        predictions,
        references,
        variants,
        fg_image_ids,
        challenge_labels=None,
        challenge_vulnerable=None,
        challenge_bg_class_fooled=None,
    ):
        columns = {}
        for pred, label, variant, fg_id in zip(predictions, references, variants, fg_image_ids, strict=True):
            cols = columns.setdefault(variant, {"prediction": [], "label": [], "fg_image_id": []})
            cols["prediction"].append(pred)
            cols["label"].append(label)
            cols["fg_image_id"].append(fg_id)
        out = metrics.variant_metrics(columns)
        if challenge_labels is not None:
            out["challenge"] = metrics.challenge_metrics(
                challenge_labels, challenge_vulnerable, challenge_bg_class_fooled
            )
        return out
