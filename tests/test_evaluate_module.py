"""The evaluate metric module (hub_cards/metric): loaded offline from its path, the numbers of
evaluator.metrics."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from evaluator import metrics
from hub_cards import METRIC_SCRIPT


@pytest.fixture(scope="module")
def in9_metric():
    import evaluate

    return evaluate.load(str(METRIC_SCRIPT))


def test_metric_module_equals_the_package_and_the_results_file(in9_metric, eval_submissions):
    folder = eval_submissions.folders["in1k"]
    rows = pq.read_table(folder / "predictions.parquet").to_pylist()
    challenge = pq.read_table(folder / "challenge.parquet").to_pylist()
    out = in9_metric.compute(
        predictions=[r["prediction"] for r in rows],
        references=[r["label"] for r in rows],
        variants=[r["variant"] for r in rows],
        fg_image_ids=[r["fg_image_id"] or r["image_id"] for r in rows],
        challenge_labels=[r["label"] for r in challenge],
        challenge_vulnerable=[r["vulnerable"] for r in challenge],
        challenge_bg_class_fooled=[r["bg_class_fooled"] for r in challenge],
    )
    claimed = json.loads((folder / "results.json").read_text())["metrics"]
    assert out["accuracy"] == claimed["accuracy"]
    assert out["bg_gap"] == claimed["bg_gap"]
    assert out["bg_reliance"] == claimed["bg_reliance"]
    assert {
        k: out["challenge"][k] for k in ("challenge_accuracy", "num_vulnerable", "bg_class_fooling_rate")
    } == {
        k: claimed["challenge"][k] for k in ("challenge_accuracy", "num_vulnerable", "bg_class_fooling_rate")
    }


def test_metric_module_on_a_hand_computed_case(in9_metric):
    out = in9_metric.compute(
        predictions=[0, 1, 1, 1, -1],
        references=[0, 1, 1, 0, 2],
        variants=["mixed_same", "mixed_same", "mixed_rand", "mixed_rand", "original"],
        fg_image_ids=["a", "b", "a", "b", "c"],
    )
    assert out["accuracy"]["mixed_same"]["value"] == 1.0
    assert out["accuracy"]["mixed_rand"]["value"] == 0.5
    assert out["accuracy"]["original"]["correct"] == 0  # -1 (unmapped) is wrong
    assert out["bg_gap"]["value"] == 0.5 and out["bg_gap"]["n_pairs"] == 2
    assert out["bg_gap"] == metrics.bg_gap(
        [0, 1], [0, 1], [1, 1], [1, 0], same_keys=["a", "b"], rand_keys=["a", "b"]
    )
