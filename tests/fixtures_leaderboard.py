"""Session fixtures for the leaderboard, submission and page tests.

``eval_submissions``: in9-eval output folders (results.json + predictions.parquet + challenge.parquet) for two
models on the ``synthetic_export`` fixture, and a registry file with that export's canonical fingerprints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Submissions:
    root: Path  # holds one in9-eval output folder per model
    folders: dict[str, Path]  # model key -> output folder
    registry: Path  # canonical fingerprints registry with the synthetic export's edition
    export: Path


def handmade_submission(
    export_dir: Path, out_dir: Path, *, model_id: str, revision: str | None, follow_background: bool
) -> Path:
    """An in9-eval output folder in the docs/CONTRACTS.md format with metrics from ``evaluator.metrics``.

    The 'model' is a rule: it predicts the label, except that a ``follow_background`` model predicts the
    background's class on mixed images and is fooled on every foreground of an even class."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evaluator import metrics
    from in9_builder.classes import IMAGE_VARIANTS

    summary = json.loads((export_dir / "in9_export.json").read_text())
    pred_rows, columns, variants = [], {}, {}
    for variant in IMAGE_VARIANTS:
        table = (
            pq.read_table(sorted((export_dir / variant).glob("test-*.parquet"))[0], columns=None)
            .drop_columns(["image"])
            .to_pylist()
        )
        cols = columns.setdefault(variant, {"prediction": [], "label": [], "fg_image_id": []})
        for row in table:
            pred = row["bg_label"] if follow_background and "bg_label" in row else row["label"]
            if variant == "only_bg_t":
                pred = row["label"] if follow_background else -1
            scores = [1.0 if c == pred else 0.0 for c in range(9)]
            pred_rows.append(
                {
                    "variant": variant,
                    "image_id": row["image_id"],
                    "fg_image_id": row.get("fg_image_id"),
                    "label": row["label"],
                    "prediction": pred,
                    "raw_top1": pred,
                    "scores": scores,
                }
            )
            cols["prediction"].append(pred)
            cols["label"].append(row["label"])
            cols["fg_image_id"].append(row.get("fg_image_id"))
        variants[variant] = {"fingerprint": summary["configs"][variant]["fingerprint"], "count": len(table)}
    fg = pq.read_table(
        sorted((export_dir / "fg_mask").glob("test-*.parquet"))[0], columns=["image_id", "label"]
    ).to_pylist()
    variants["fg_mask"] = {"fingerprint": summary["configs"]["fg_mask"]["fingerprint"], "count": len(fg)}
    challenge_rows = []
    for row in fg:
        fooled = follow_background and row["label"] % 2 == 0
        challenge_rows.append(
            {
                "fg_image_id": row["image_id"],
                "label": row["label"],
                "vulnerable": fooled,
                "fooling_bg_image_id": fg[0]["image_id"] if fooled else None,
                "fooling_prediction": (row["label"] + 1) % 9 if fooled else None,
                "bg_class_fooled": fooled,
                "forward_passes": 3,
            }
        )
    metric_block = metrics.variant_metrics(columns)
    metric_block["challenge"] = {
        **metrics.challenge_metrics(
            [r["label"] for r in challenge_rows],
            [r["vulnerable"] for r in challenge_rows],
            [r["bg_class_fooled"] for r in challenge_rows],
        ),
        "pool_size": variants["only_bg_t"]["count"],
        "forward_passes": 3 * len(challenge_rows),
    }
    doc = {
        "schema": "in9-results/1",
        "model": {
            "id": model_id,
            "revision": revision,
            "num_labels": 9,
            "label_space": "in9",
            "num_params": 1234,
        },
        "protocol": {
            "label_mode": "top1-mapped",
            "preprocess": "paper",
            "precision": "no",
            "batch_size": 8,
            "limit": None,
        },
        "data": {
            "source": summary["source"],
            "edition": summary["edition"],
            "seed": summary["seed"],
            "variants": variants,
        },
        "metrics": metric_block,
        "environment": {"python": "3", "packages": {}, "device": "cpu", "num_processes": 1},
        "created_at": "2026-11-28T12:00:00+00:00",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2))
    pq.write_table(pa.Table.from_pylist(pred_rows), out_dir / "predictions.parquet")
    pq.write_table(pa.Table.from_pylist(challenge_rows), out_dir / "challenge.parquet")
    return out_dir


@pytest.fixture(scope="session")
def eval_submissions(tmp_path_factory, synthetic_export) -> Submissions:
    """Two models' in9-eval outputs on the synthetic export, plus a registry that knows its edition."""
    from evaluator.leaderboard import register_export

    root = tmp_path_factory.mktemp("submissions")
    folders = {
        "bg": handmade_submission(
            synthetic_export,
            root / "results" / "bg-model",
            model_id="org/bg-model",
            revision="a" * 40,
            follow_background=True,
        ),
        "fg": handmade_submission(
            synthetic_export,
            root / "results" / "fg-model",
            model_id="org/fg-model",
            revision="b" * 40,
            follow_background=False,
        ),
    }
    registry = root / "canonical.json"
    register_export(synthetic_export, registry)
    return Submissions(root / "results", folders, registry, synthetic_export)
