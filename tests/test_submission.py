"""Hub forms of a result: .eval_results/in9.yaml and model-index, read back by huggingface_hub's own parsers
with every value intact."""

from __future__ import annotations

import json

import yaml
from huggingface_hub import (
    EvalResultEntry,
    ModelCard,
    ModelCardData,
    eval_result_entries_to_yaml,
    parse_eval_result_entries,
)
from huggingface_hub.repocard_data import model_index_to_eval_results

from evaluator.results import submission
from hub_cards import eval_yaml_data
from in9_builder.classes import IMAGE_VARIANTS


def _doc(eval_submissions, key="in9"):
    return json.loads((eval_submissions.folders[key] / "results.json").read_text())


def test_eval_results_yaml_round_trips_through_the_hub_parser(eval_submissions):
    doc = _doc(eval_submissions)
    text = submission.eval_results_yaml(doc, dataset_id="org/in9", dataset_revision="c" * 40)
    entries = parse_eval_result_entries(yaml.safe_load(text))
    assert [e.task_id for e in entries] == list(IMAGE_VARIANTS)
    # every task is a task of the dataset's eval.yaml, every value the claimed accuracy
    assert {e.task_id for e in entries} <= {t["id"] for t in eval_yaml_data("org/in9")["tasks"]}
    for e in entries:
        assert e.dataset_id == "org/in9" and e.dataset_revision == "c" * 40
        assert e.value == round(doc["metrics"]["accuracy"][e.task_id]["value"], 6)
        assert e.date == doc["created_at"]
        assert (
            e.notes == "in9-eval; label_mode=top1-mapped; preprocess=paper; precision=no; "
            "data=synthetic seeded seed=0"
        )
    assert entries == submission.eval_result_entries(doc, dataset_id="org/in9", dataset_revision="c" * 40)
    assert yaml.safe_load(text) == eval_result_entries_to_yaml(entries)
    assert {e.value for e in entries if e.task_id == "mixed_rand"} == {
        round(doc["metrics"]["accuracy"]["mixed_rand"]["value"], 6)
    }


def test_model_index_round_trips(eval_submissions):
    doc = _doc(eval_submissions)
    data = submission.model_card_data(doc, dataset_id="org/in9")
    name, results = model_index_to_eval_results(data.to_dict()["model-index"])
    assert name == "tiny-resnet-in9"
    by_metric = {(r.dataset_config, r.metric_type): r.metric_value for r in results}
    assert by_metric == {
        **{(v, "accuracy"): round(doc["metrics"]["accuracy"][v]["value"], 6) for v in IMAGE_VARIANTS},
        ("mixed_rand", "bg_gap"): round(doc["metrics"]["bg_gap"]["value"], 6),
        ("fg_mask", "challenge_accuracy"): round(doc["metrics"]["challenge"]["challenge_accuracy"], 6),
    }
    assert all(
        r.task_type == "image-classification" and r.dataset_type == "org/in9" and r.dataset_split == "test"
        for r in results
    )
    # the same through ModelCardData's own constructor
    again = ModelCardData(model_name="tiny-resnet-in9", eval_results=results)
    assert again.to_dict()["model-index"] == data.to_dict()["model-index"]


def test_in9_eval_wrote_hub_files_that_parse(eval_submissions):
    """in9-eval itself writes .eval_results/in9.yaml and the model card snippet beside results.json."""
    folder = eval_submissions.folders["in1k"]
    doc = _doc(eval_submissions, "in1k")
    entries = parse_eval_result_entries(yaml.safe_load((folder / ".eval_results" / "in9.yaml").read_text()))
    assert entries == submission.eval_result_entries(doc)
    card = ModelCard.load(folder / "model_card_in9.md")
    assert len(card.data.eval_results) == 10  # 8 variants, BG-gap, challenge
    pct = {v: f"{100 * a['value']:.1f}" for v, a in doc["metrics"]["accuracy"].items()}
    assert f"| Mixed-Rand (`mixed_rand`) | {pct['mixed_rand']} |" in card.text
    gap = 100 * doc["metrics"]["bg_gap"]["value"]
    assert (
        f"(Mixed-Same − Mixed-Rand; positive = the model relies on backgrounds): {gap:.1f} points"
        in card.text
    )
    challenge = 100 * doc["metrics"]["challenge"]["challenge_accuracy"]
    assert f"can flip):\n{challenge:.1f} %" in card.text
    assert "model revision\n`unpinned`" in card.text


def test_write_submission_writes_both_files(tmp_path, eval_submissions):
    paths = submission.write_submission(_doc(eval_submissions), tmp_path, dataset_id="org/in9")
    assert paths == {
        "eval_results": tmp_path / ".eval_results" / "in9.yaml",
        "model_card": tmp_path / "model_card_in9.md",
    }
    entries = parse_eval_result_entries(yaml.safe_load(paths["eval_results"].read_text()))
    assert len(entries) == 8 and all(
        isinstance(e, EvalResultEntry) and e.dataset_id == "org/in9" for e in entries
    )
    assert ModelCard.load(paths["model_card"]).data.model_name == "tiny-resnet-in9"


def test_results_without_challenge_have_no_challenge_entry(eval_submissions):
    doc = _doc(eval_submissions)
    del doc["metrics"]["challenge"]
    del doc["metrics"]["bg_gap"]
    metrics = {r.metric_type for r in submission.model_index_results(doc)}
    assert metrics == {"accuracy"}
    assert "Challenge accuracy" not in submission.render_model_card_snippet(doc)
