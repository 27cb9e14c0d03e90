"""Session fixtures for the leaderboard, submission and page tests.

``eval_submissions``: real ``in9-eval --challenge`` output folders (results.json, predictions.parquet,
challenge.parquet, .eval_results/in9.yaml) for the two ``tiny_models`` on the ``synthetic_export`` fixture,
and a registry file with that export's canonical fingerprints (registered with ``in9-leaderboard register``).
The models are local folders, so their results carry no revision: validating them needs ``--allow-unpinned``.

``IN9_REGISTRY`` points into the session's temporary folder for every test (and every subprocess a test
starts), so no test reads or writes the real user registry in ``~/.cache/in9``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Submissions:
    root: Path  # holds one in9-eval output folder per model
    folders: dict[str, Path]  # model key ("in1k", "in9") -> output folder
    registry: Path  # canonical fingerprints registry with the synthetic export's edition
    export: Path


@pytest.fixture(scope="session", autouse=True)
def user_registry(tmp_path_factory) -> Path:
    """The user registry of this test session (empty until a test registers into it)."""
    path = tmp_path_factory.mktemp("user-registry") / "canonical_fingerprints.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IN9_REGISTRY", str(path))
        yield path


# What runs a model: a results or leaderboard module importing any of these needs torch to read a file.
MODEL_RUNNING = (
    "torch",
    "transformers",
    "accelerate",
    "evaluator.runtime",
    *(
        f"evaluator.{m}"
        for m in ("api", "challenge", "cpu_allocator", "data", "models", "predict", "preprocess")
    ),
)


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """Every module each ``.py`` file under ``folder`` imports, at any depth (function-level imports too)."""
    out = {}
    for file in sorted(folder.rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        out[str(file.relative_to(folder))] = names
    return out


def model_running_imports(folder: Path) -> dict[str, list[str]]:
    """file -> the model-running modules it imports, for each ``.py`` file under ``folder`` importing one."""
    out = {}
    for file, names in imported_modules(folder).items():
        bad = sorted(n for n in names if any(n == m or n.startswith(f"{m}.") for m in MODEL_RUNNING))
        if bad:
            out[file] = bad
    return out


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


# A Hub id and a revision as long as they come: the page's tables must still fit a 1400 px window.
LONG_MODEL = "an-organisation-with-a-long-name/vit-huge-patch14-clip-quickgelu-448.dfn5b-ft-in12k-in1k-extra"
LONG_REVISION = "0123456789abcdef0123456789abcdef01234567"


def seeds_block(mixed_rand: tuple[float, float | None], bg_gap: tuple[float, float | None], seeds=(0, 1, 2)):
    """A results.json ``metrics.seeds`` block (fractions) with these (mean, std) summaries; per-seed entries
    are filler: the page shows the summary only."""
    per_seed = {
        str(s): {"accuracy": {"mixed_same": 0.7, "mixed_rand": 0.6, "mixed_next": 0.5}, "bg_gap": 0.1}
        for s in seeds
    }
    summary = {
        "mixed_same": {"mean": 0.7, "std": None if len(seeds) == 1 else 0.01},
        "mixed_rand": {"mean": mixed_rand[0], "std": mixed_rand[1]},
        "mixed_next": {"mean": 0.5, "std": None if len(seeds) == 1 else 0.01},
        "bg_gap": {"mean": bg_gap[0], "std": bg_gap[1]},
    }
    return {"seeds": list(seeds), "per_seed": per_seed, "summary": summary}


def page_rows(folders: dict[str, Path], edits: dict | None = None) -> list[dict]:
    """Page rows (``reproduced_row``) of the fixture's results.json files, each edited in memory first by
    ``edits[key](doc)``. Not validated: a rendering test of a field the validator need not know (yet)."""
    import json

    from evaluator.leaderboard.site import reproduced_row
    from evaluator.leaderboard.validate import Submission

    rows = []
    for key, folder in sorted(folders.items()):
        path = folder / "results.json"
        doc = json.loads(path.read_text())
        (edits or {}).get(key, lambda d: None)(doc)
        rows.append(reproduced_row(Submission(path, doc)))
    return rows


def long_names(doc: dict) -> None:
    """An edit for ``page_rows``: a Hub model with the longest name and revision."""
    doc["model"] |= {"id": LONG_MODEL, "revision": LONG_REVISION, "source": "hub"}
