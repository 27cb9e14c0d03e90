"""Hub-native forms of a results.json, written beside it by ``in9-eval``.

- ``.eval_results/in9.yaml`` in the model repo (the Hub's evaluation-results format): one entry per variant,
  each a task of the dataset's ``eval.yaml``.
- a ``model-index`` block for the model card (the older format the Hub still reads), with BG-gap and the
  challenge.

Both are built with huggingface_hub's own classes (``EvalResultEntry``, ``EvalResult``, ``ModelCardData``)
so that the Hub's parsers read back exactly what is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, EvalResultEntry, ModelCard, ModelCardData, eval_result_entries_to_yaml

from evaluator.results.report import pct
from hub_cards import CONFIG_TITLES, DEFAULT_DATASET_ID, TEMPLATES
from in9_builder.atomic import atomic_write_text
from in9_builder.classes import IMAGE_VARIANTS

EVAL_RESULTS_FILE = Path(".eval_results") / "in9.yaml"
MODEL_CARD_SNIPPET = "model_card_in9.md"
TASK_TYPE = "image-classification"


def as_results_dict(results: Any) -> dict[str, Any]:
    """A results.json document from a dict or from an object that serialises to one (``to_dict()``)."""
    if isinstance(results, Mapping):
        return dict(results)
    to_dict = getattr(results, "to_dict", None)
    if to_dict is None:
        raise TypeError(
            f"expected a results.json dict or an object with to_dict(), got {type(results).__name__}"
        )
    return to_dict()


def _variant_accuracies(doc: Mapping[str, Any]) -> list[tuple[str, float]]:
    accuracy = doc.get("metrics", {}).get("accuracy", {})
    return [(v, float(accuracy[v]["value"])) for v in IMAGE_VARIANTS if v in accuracy]


def protocol_note(doc: Mapping[str, Any]) -> str:
    """One line that says how the numbers were made (shown beside every entry on the Hub)."""
    protocol, data = doc.get("protocol", {}), doc.get("data", {})
    edition = data.get("edition", "?")
    if data.get("seed") is not None:
        edition += f" seed={data['seed']}"
    return (
        f"in9-eval; label_mode={protocol.get('label_mode')}; preprocess={protocol.get('preprocess')}; "
        f"precision={protocol.get('precision')}; data={data.get('source')} {edition}"
    )


def eval_result_entries(
    results: Any, *, dataset_id: str = DEFAULT_DATASET_ID, dataset_revision: str | None = None
) -> list[EvalResultEntry]:
    """One ``.eval_results`` entry per variant scored: task id = config name, value = accuracy in [0, 1]."""
    doc = as_results_dict(results)
    note = protocol_note(doc)
    return [
        EvalResultEntry(
            dataset_id=dataset_id,
            task_id=variant,
            value=round(value, 6),
            dataset_revision=dataset_revision,
            date=doc.get("created_at"),
            notes=note,
        )
        for variant, value in _variant_accuracies(doc)
    ]


def eval_results_yaml(
    results: Any, *, dataset_id: str = DEFAULT_DATASET_ID, dataset_revision: str | None = None
) -> str:
    """The text of ``.eval_results/in9.yaml``."""
    import yaml

    entries = eval_result_entries(results, dataset_id=dataset_id, dataset_revision=dataset_revision)
    return yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False, allow_unicode=True)


def model_index_results(
    results: Any, *, dataset_id: str = DEFAULT_DATASET_ID, dataset_revision: str | None = None
) -> list[EvalResult]:
    """``model-index`` results: accuracy per variant, BG-gap (Mixed-Same − Mixed-Rand), challenge accuracy."""
    doc = as_results_dict(results)
    label_mode = doc.get("protocol", {}).get("label_mode", "top1-mapped")
    common = {
        "task_type": TASK_TYPE,
        "task_name": "Image Classification",
        "dataset_type": dataset_id,
        "dataset_split": "test",
        "dataset_revision": dataset_revision,
    }
    out = [
        EvalResult(
            **common,
            dataset_name=f"IN-9 {CONFIG_TITLES[variant]}",
            dataset_config=variant,
            metric_type="accuracy",
            metric_value=round(value, 6),
            metric_name=f"Top-1 accuracy ({label_mode})",
        )
        for variant, value in _variant_accuracies(doc)
    ]
    metrics = doc.get("metrics", {})
    if metrics.get("bg_gap"):
        out.append(
            EvalResult(
                **common,
                dataset_name=f"IN-9 {CONFIG_TITLES['mixed_rand']}",
                dataset_config="mixed_rand",
                metric_type="bg_gap",
                metric_value=round(float(metrics["bg_gap"]["value"]), 6),
                metric_name="BG-gap (Mixed-Same − Mixed-Rand accuracy)",
            )
        )
    if metrics.get("challenge"):
        out.append(
            EvalResult(
                **common,
                dataset_name="IN-9 backgrounds challenge",
                dataset_config="fg_mask",
                metric_type="challenge_accuracy",
                metric_value=round(float(metrics["challenge"]["challenge_accuracy"]), 6),
                metric_name="Challenge accuracy (share of foregrounds no background flips)",
            )
        )
    return out


def model_name(doc: Mapping[str, Any]) -> str:
    """The display name of a model: the last part of its id or path."""
    return str(doc["model"]["id"]).rstrip("/").split("/")[-1]


def model_card_data(
    results: Any, *, dataset_id: str = DEFAULT_DATASET_ID, dataset_revision: str | None = None
) -> ModelCardData:
    """Card metadata whose YAML carries the ``model-index`` block."""
    doc = as_results_dict(results)
    return ModelCardData(
        model_name=model_name(doc),
        datasets=[dataset_id],
        eval_results=model_index_results(doc, dataset_id=dataset_id, dataset_revision=dataset_revision),
    )


def render_model_card_snippet(
    results: Any, *, dataset_id: str = DEFAULT_DATASET_ID, dataset_revision: str | None = None
) -> str:
    """A model card section (YAML front matter with ``model-index`` + a results table) from
    ``hub_cards/model_card_results.md``; paste the YAML into the card's metadata, the table into its body."""
    doc = as_results_dict(results)
    metrics = doc.get("metrics", {})
    rows = [
        {
            "config": v,
            "title": CONFIG_TITLES[v],
            "value": pct(a),
            "ci": [pct(x) for x in metrics["accuracy"][v].get("ci95", [None, None])],
        }
        for v, a in _variant_accuracies(doc)
    ]
    gap = metrics.get("bg_gap")
    card = ModelCard.from_template(
        model_card_data(doc, dataset_id=dataset_id, dataset_revision=dataset_revision),
        template_path=str(TEMPLATES / "model_card_results.md"),
        model=doc["model"],
        protocol=doc.get("protocol", {}),
        data=doc.get("data", {}),
        rows=rows,
        bg_gap=None if not gap else {"value": pct(gap["value"]), "ci": [pct(x) for x in gap["ci95"]]},
        challenge=None
        if not metrics.get("challenge")
        else {
            "value": pct(metrics["challenge"]["challenge_accuracy"]),
            "fooling": pct(metrics["challenge"].get("bg_class_fooling_rate")),
        },
        dataset_id=dataset_id,
    )
    return str(card)


def write_submission(
    results: Any,
    output_dir: str | Path,
    *,
    dataset_id: str = DEFAULT_DATASET_ID,
    dataset_revision: str | None = None,
) -> dict[str, Path]:
    """Write ``.eval_results/in9.yaml`` and the model card snippet beside results.json; return their paths."""
    out = Path(output_dir)
    doc = as_results_dict(results)
    eval_path = atomic_write_text(
        out / EVAL_RESULTS_FILE,
        eval_results_yaml(doc, dataset_id=dataset_id, dataset_revision=dataset_revision),
    )
    card_path = atomic_write_text(
        out / MODEL_CARD_SNIPPET,
        render_model_card_snippet(doc, dataset_id=dataset_id, dataset_revision=dataset_revision),
    )
    return {"eval_results": eval_path, "model_card": card_path}
