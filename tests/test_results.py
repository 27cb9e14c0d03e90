"""A results folder (results.json schema in9-results/1 and the two parquet files): write, read back, recompute
from predictions, clear errors; the results package never needs the model-running code."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import evaluator.results
from evaluator.results import schema
from evaluator.results.report import console_table
from evaluator.results.schema import (
    CHALLENGE_COLUMNS,
    CHALLENGE_SCHEMA,
    PREDICTION_SCHEMA,
    SCHEMA,
    Results,
    check_document,
    from_predictions,
    write_challenge_parquet,
)
from in9_builder.errors import In9Error
from tests.fixtures_leaderboard import model_running_imports


def _predictions() -> pa.Table:
    rows = []
    for variant, correct_every in (("original", 1), ("mixed_same", 2), ("mixed_rand", 3)):
        for i in range(18):
            label = i % 9
            pred = label if i % correct_every == 0 else -1
            rows.append(
                {
                    "variant": variant,
                    "image_id": f"{variant}-{i}",
                    "label": label,
                    "prediction": pred,
                    "fg_image_id": None if variant == "original" else f"fg{i}",
                    "raw_top1": 3,
                    "scores": np.full(9, 1 / 9, np.float32).tolist(),
                }
            )
    return pa.Table.from_pylist(rows, schema=PREDICTION_SCHEMA)


def _results() -> Results:
    table = _predictions()
    return Results(
        model={
            "id": "org/m",
            "revision": "abc123",
            "num_labels": 1000,
            "label_space": "imagenet-1k",
            "num_params": 7,
        },
        protocol={
            "label_mode": "top1-mapped",
            "preprocess": "paper",
            "precision": "no",
            "batch_size": 4,
            "limit": None,
        },
        data={
            "source": "synthetic",
            "edition": "seeded",
            "seed": 0,
            "variants": {
                v: {"fingerprint": "sha256:x", "count": 18} for v in ("original", "mixed_same", "mixed_rand")
            },
        },
        metrics=from_predictions(table),
        environment={"python": "3", "packages": {"torch": "2"}, "device": "cpu", "num_processes": 1},
        predictions=table,
    )


def test_from_predictions_values():
    m = from_predictions(_predictions())
    assert m["accuracy"]["original"]["value"] == 1.0
    assert m["accuracy"]["mixed_same"]["correct"] == 9 and m["accuracy"]["mixed_rand"]["correct"] == 6
    assert m["bg_gap"]["value"] == pytest.approx(9 / 18 - 6 / 18) and m["bg_gap"]["n_pairs"] == 18
    assert "bg_reliance" not in m  # neither only_fg nor only_bg_t was scored


def test_write_then_read_round_trip(tmp_path):
    results = _results()
    path = results.write(tmp_path / "out")
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "predictions.parquet",
        "results.json",
        "summary.md",
    ]
    doc = json.loads(path.read_text())
    assert doc["schema"] == SCHEMA and list(doc) == [
        "schema",
        "model",
        "protocol",
        "data",
        "metrics",
        "environment",
        "created_at",
    ]
    back = Results.read(path.parent)
    assert back.to_dict() == results.to_dict()
    assert back.predictions.equals(results.predictions)
    assert from_predictions(back.predictions) == doc["metrics"]


def test_summary_and_console_table(tmp_path):
    results = _results()
    results.write(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "| mixed_same | 50.0 | [29.0, 71.0] | 9/18 |" in summary
    assert "BG-Gap (Mixed-Same − Mixed-Rand) | 16.7 pp" in summary
    table = console_table(results)
    assert "original" in table and "100.0" in table and "revision abc123" in table


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(schema="in9-results/0"), "field 'schema' is 'in9-results/0'"),
        (lambda d: d.pop("environment"), "missing field 'environment'"),
        (lambda d: d["model"].pop("revision"), "missing field 'model.revision'"),
        (lambda d: d["protocol"].pop("label_mode"), "missing field 'protocol.label_mode'"),
    ],
)
def test_check_document_names_the_field(mutate, match):
    doc = _results().to_dict()
    mutate(doc)
    with pytest.raises(In9Error, match=match):
        check_document(doc)


def test_read_errors(tmp_path):
    with pytest.raises(In9Error, match="results.json: not found"):
        Results.read(tmp_path)
    (tmp_path / "results.json").write_text("{oops")
    with pytest.raises(In9Error, match="not valid JSON"):
        Results.read(tmp_path / "results.json")


def _challenge_rows() -> list[dict]:
    return [
        {
            "fg_image_id": f"fg{i}",
            "label": i % 9,
            "vulnerable": i % 2 == 0,
            "fooling_bg_image_id": f"bg{i}" if i % 2 == 0 else None,
            "fooling_prediction": (i + 1) % 9 if i % 2 == 0 else None,
            "bg_class_fooled": i % 4 == 0,
            "forward_passes": i + 1,
            "ignored": "not a column",
        }
        for i in range(6)
    ]


def test_results_with_challenge_rows_write_the_challenge_parquet(tmp_path):
    results = _results()
    results.challenge_rows = _challenge_rows()
    results.write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "challenge.parquet",
        "predictions.parquet",
        "results.json",
        "summary.md",
    ]
    table = pq.read_table(tmp_path / "challenge.parquet")
    assert table.schema.equals(CHALLENGE_SCHEMA) and tuple(table.column_names) == CHALLENGE_COLUMNS
    assert table.to_pylist() == [{c: r[c] for c in CHALLENGE_COLUMNS} for r in _challenge_rows()]


def test_an_interrupted_write_keeps_the_previous_files(tmp_path, monkeypatch):
    results = _results()
    results.challenge_rows = _challenge_rows()
    results.write(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def half_written(table, where):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(schema.pq, "write_table", half_written)
    results.challenge_rows = _challenge_rows()[:2]
    with pytest.raises(OSError, match="disk full"):
        results.write(tmp_path)
    with pytest.raises(OSError, match="disk full"):
        write_challenge_parquet(_challenge_rows()[:1], tmp_path / "challenge.parquet")
    # every file is the complete previous one, and no temporary file is left beside them
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_results_never_import_model_running_code():
    folder = Path(evaluator.results.__file__).parent
    assert model_running_imports(folder) == {}
    code = (
        "import sys, tempfile\nimport evaluator.results.submission\nfrom tests.test_results import _results\n"
        "_results().write(tempfile.mkdtemp())\nprint('torch' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    assert run.stdout.splitlines() == ["False"], run.stderr
