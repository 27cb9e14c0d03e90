"""Session fixtures for the leaderboard, submission and page tests.

``eval_submissions``: real ``in9-eval --challenge`` output folders (results.json, predictions.parquet,
challenge.parquet, .eval_results/in9.yaml) for the two ``tiny_models`` on the ``synthetic_export`` fixture,
and a registry file with that export's canonical fingerprints (registered with ``in9-leaderboard register``).
The models are local folders, so their results carry no revision: validating them needs ``--allow-unpinned``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Submissions:
    root: Path  # holds one in9-eval output folder per model
    folders: dict[str, Path]  # model key ("in1k", "in9") -> output folder
    registry: Path  # canonical fingerprints registry with the synthetic export's edition
    export: Path


def run_in9_eval(model: Path, export: Path, out: Path, cache: Path) -> Path:
    """``in9-eval`` as a user runs it (in-process): every variant and the challenge."""
    from evaluator.cli.eval import main

    code = main(
        [
            "--model",
            str(model),
            "--data",
            str(export),
            "--output-dir",
            str(out),
            "--challenge",
            "--batch-size",
            "36",
            "--cache-dir",
            str(cache),
            "--no-progress",
            "--num-workers",
            "0",
        ]
    )
    assert code == 0, f"in9-eval failed on {model}"
    return out


@pytest.fixture(scope="session")
def eval_submissions(tmp_path_factory, synthetic_export, tiny_models) -> Submissions:
    """Two models' in9-eval outputs on the synthetic export, plus a registry that knows its edition."""
    from evaluator.cli.leaderboard import main

    root = tmp_path_factory.mktemp("submissions")
    folders = {
        key: run_in9_eval(model, synthetic_export, root / "results" / key, root / "cache")
        for key, model in sorted(tiny_models.items())
    }
    registry = root / "canonical.json"
    assert main(["register", str(synthetic_export), "--canonical", str(registry)]) == 0
    return Submissions(root / "results", folders, registry, synthetic_export)
