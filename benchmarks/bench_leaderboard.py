"""Cost of validating a full-size submission and of building the page, against reading the files alone.

A full IN-9 submission: 8 variants x 4,050 predictions + 4,050 challenge rows (made here from a seeded random
'model', in the in9-eval format, with metrics from evaluator.metrics). Figures printed:
- validate (all checks: schema, fingerprints, every metric recomputed incl. the 1,000-resample bootstrap,
  challenge) versus the same-run baseline of only reading results.json + the two parquet files;
- build of a page with N such submissions, and the share of it spent rendering (the rest is validation).

    python benchmarks/bench_leaderboard.py [--submissions 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from evaluator import metrics
from evaluator.leaderboard.site import build_site
from evaluator.leaderboard.validate import validate_files
from evaluator.results.schema import SCHEMA, from_predictions
from hub_cards import leaderboard_page, published_rows
from in9_builder.classes import IMAGE_VARIANTS, MIXED_VARIANTS

PER_CLASS = 450


def make_submission(folder: Path, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(9), PER_CLASS)
    ids = [f"n{c:08d}_{i:05d}" for c in range(9) for i in range(PER_CLASS)]
    skill = rng.uniform(0.5, 0.95)
    rows, variants = [], {}
    for variant in IMAGE_VARIANTS:
        correct = rng.random(len(labels)) < skill
        preds = np.where(correct, labels, rng.integers(-1, 9, len(labels)))
        for image_id, y, p in zip(ids, labels, preds, strict=True):
            rows.append(
                {
                    "variant": variant,
                    "image_id": f"fg_{image_id}_bg_x" if variant in MIXED_VARIANTS else image_id,
                    "fg_image_id": image_id if variant in MIXED_VARIANTS else None,
                    "label": int(y),
                    "prediction": int(p),
                    "raw_top1": int(p),
                    "scores": [0.0] * 9,
                }
            )
        variants[variant] = {"fingerprint": f"sha256:{variant}", "count": len(labels)}
    variants["fg_mask"] = {"fingerprint": "sha256:fg_mask", "count": len(labels)}
    table = pa.Table.from_pylist(rows)
    vulnerable = rng.random(len(labels)) < 0.8
    fooled = vulnerable & (rng.random(len(labels)) < 0.7)
    challenge = [
        {
            "fg_image_id": i,
            "label": int(y),
            "vulnerable": bool(v),
            "fooling_bg_image_id": ids[0] if v else None,
            "fooling_prediction": 0 if v else None,
            "bg_class_fooled": bool(f),
            "forward_passes": 10,
        }
        for i, y, v, f in zip(ids, labels, vulnerable, fooled, strict=True)
    ]
    block = from_predictions(table)
    block["challenge"] = {
        **metrics.challenge_metrics(labels, vulnerable, fooled),
        "pool_size": len(labels),
        "forward_passes": 10 * len(labels),
    }
    doc = {
        "schema": SCHEMA,
        "model": {
            "id": f"org/model-{seed}",
            "revision": f"{seed:040x}",
            "num_labels": 1000,
            "label_space": "imagenet-1k",
            "num_params": 25_557_032,
        },
        "protocol": {
            "label_mode": "top1-mapped",
            "preprocess": "paper",
            "precision": "no",
            "batch_size": 64,
            "limit": None,
        },
        "data": {"source": "release", "edition": "official", "seed": None, "variants": variants},
        "metrics": block,
        "environment": {"python": "3", "packages": {}, "device": "cpu", "num_processes": 1},
        "created_at": f"2026-11-28T12:{seed % 60:02d}:00+00:00",
    }
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(doc))
    pq.write_table(table, folder / "predictions.parquet")
    pq.write_table(pa.Table.from_pylist(challenge), folder / "challenge.parquet")
    return variants


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        variants = {}
        for seed in range(args.submissions):
            variants = make_submission(root / "results" / f"m{seed}", seed)
        registry = root / "canonical.json"
        registry.write_text(
            json.dumps(
                {
                    "schema": "in9-canonical/1",
                    "editions": [
                        {
                            "source": "release",
                            "edition": "official",
                            "seed": None,
                            "source_params": {},
                            "configs": variants,
                        }
                    ],
                }
            )
        )
        first = root / "results" / "m0"

        def read_files() -> None:
            json.loads((first / "results.json").read_text())
            pq.read_table(first / "predictions.parquet")
            pq.read_table(first / "challenge.parquet").to_pylist()

        read_files()  # warm the page cache and the imports for both measurements
        start = time.perf_counter()
        read_files()
        read_s = time.perf_counter() - start

        start = time.perf_counter()
        (sub,) = validate_files([first / "results.json"], registry_path=registry)
        validate_s = time.perf_counter() - start
        assert sub.ok, sub.problems

        start = time.perf_counter()
        report = build_site(root / "results", root / "site", registry_path=registry)
        build_s = time.perf_counter() - start
        assert len(report.rows) == args.submissions
        start = time.perf_counter()
        leaderboard_page.render_html(report.rows, published_rows())
        leaderboard_page.render_markdown(report.rows, published_rows())
        render_s = time.perf_counter() - start

    print(f"validate one full submission (8 x 4050 predictions + 4050 challenge rows): {validate_s:.2f} s")
    print(f"  baseline, reading its three files only: {read_s:.3f} s  -> ratio {validate_s / read_s:.1f}x")
    print(
        f"build a page of {args.submissions} submissions (validating each): {build_s:.2f} s; of which "
        f"rendering the page and the markdown: {render_s:.3f} s ({render_s / build_s:.1%})"
    )


if __name__ == "__main__":
    main()
