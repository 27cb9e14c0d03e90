"""The demo behind ``in9-demo``: the paper's main finding in miniature, offline, on CPU.

Orchestration only: build the synthetic data, train two tiny classifiers (evaluator.demo.train_tiny) — one on
the training scenes as they are (class-correlated backgrounds, "original"), one on their Mixed-Rand
rendering — then run the user's own CLIs on both (``in9-eval --challenge``, ``in9-leaderboard build``) and
print a table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from evaluator.demo.train_tiny import TrainSettings, save_classifier, train_classifier, training_images
from in9_builder.errors import In9Error
from in9_builder.export import export
from in9_builder.sources.synthetic import SyntheticSource

MARKER = ".in9-demo"  # written into the output folder, so that a rerun knows the folder is its own to replace
MODELS = ("original", "mixed_rand")  # the training set each model sees, which is also its name
COLUMNS = (
    ("Original", ("accuracy", "original")),
    ("Mixed-Same", ("accuracy", "mixed_same")),
    ("Mixed-Rand", ("accuracy", "mixed_rand")),
    ("BG-gap", ("bg_gap",)),
    ("Only-BG-T", ("accuracy", "only_bg_t")),
    ("Challenge", ("challenge", "challenge_accuracy")),
)


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and seeds of the demo (the ``in9-demo`` flags)."""

    out: str = "demo_out"
    per_class: int = 20  # test images per class
    train_per_class: int = 100
    size: int = 64  # image side in pixels
    epochs: int = 6
    batch_size: int = 64  # training batch size
    learning_rate: float = 5e-3
    bg_correlation: float = 0.9  # probability that a scene's background is its own class's
    fg_hue_correlation: float = 0.9  # probability that a foreground has its class's hue
    seed: int = 0  # scenes, background draw and training
    overwrite: bool = False  # replace an existing ``out`` even if it is not a previous demo's output


def _source_kwargs(args: DemoSettings, split: str) -> dict:
    counts = (
        {"per_class": args.per_class, "train_per_class": 0}
        if split == "test"
        else {"per_class": 2, "train_per_class": args.train_per_class}
    )  # per_class 2: the smallest valid test split
    return {
        **counts,
        "size": args.size,
        "scene_seed": args.seed,
        "bg_correlation": args.bg_correlation,
        "fg_hue_correlation": args.fg_hue_correlation,
    }


def build_test_export(args: DemoSettings, out: Path) -> Path:
    return export("synthetic", out, seed=args.seed, source_kwargs=_source_kwargs(args, "test"), num_proc=1)


def train_models(args: DemoSettings, models_dir: Path) -> dict[str, Path]:
    scenes = list(SyntheticSource(**_source_kwargs(args, "train")).scenes("train"))
    settings = TrainSettings(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed
    )
    folders = {}
    for name in MODELS:
        images, labels = training_images(scenes, name, args.seed)
        print(f"training the {name!r} model on {len(images)} {name} images ({args.size} px)", flush=True)
        model = train_classifier(images, labels, settings, log=lambda line: print(line, flush=True))
        folder = models_dir / f"tiny-resnet-{name.replace('_', '-')}"
        folders[name] = save_classifier(model, folder, args.size)
    return folders


def _cli(name: str) -> str:
    # The console script installed beside this interpreter: exactly what a user runs.
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        raise In9Error(f"the {name} command is not installed; run bash scripts/setup.sh")
    return path


def run_cli(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    completed = subprocess.run([_cli(command[0]), *command[1:]], env=env)
    if completed.returncode != 0:
        raise In9Error(f"`{' '.join(command)}` failed with exit status {completed.returncode} (see above)")


def metric(results: dict, path: tuple[str, ...]) -> float:
    value = results["metrics"]
    for key in path:
        value = value[key]
    return float(value["value"] if isinstance(value, dict) else value)


def format_table(rows: dict[str, dict]) -> str:
    header = f"{'model trained on':<18}" + "".join(f"{title:>12}" for title, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for name, results in rows.items():
        cells = "".join(f"{100 * metric(results, path):>11.1f}%" for _, path in COLUMNS)
        lines.append(f"{name:<18}{cells}")
    return "\n".join(lines)


def run_demo(args: DemoSettings) -> dict[str, dict]:
    """The whole demo; returns each model's results.json, keyed by the training set's name."""
    out = Path(args.out).absolute()
    if out.exists():
        if not (args.overwrite or (out / MARKER).is_file()):
            raise In9Error(
                f"out={out} already exists and is not a previous demo's output; "
                "pass overwrite=True or choose another folder",
                argument="out",
            )
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("in9-demo output; rerunning in9-demo replaces this folder\n")
    started = time.perf_counter()
    print(f"building the synthetic test set ({args.per_class} per class, {args.size} px)", flush=True)
    data = build_test_export(args, out / "data")
    print(f"[{time.perf_counter() - started:.0f} s] test set exported to {data}", flush=True)
    folders = train_models(args, out / "models")
    print(f"[{time.perf_counter() - started:.0f} s] models saved", flush=True)
    results_dir = out / "results"
    for folder in folders.values():
        # Batches of 256 small images: faster on CPU than the default 32; results do not depend on it.
        run_cli(
            [
                "in9-eval",
                "--model",
                str(folder),
                "--data",
                str(data),
                "--challenge",
                "--no-progress",
                "--batch-size",
                "256",
                "--output-dir",
                str(results_dir / folder.name),
                "--cache-dir",
                str(out / "cache"),
            ]
        )
        print(f"[{time.perf_counter() - started:.0f} s] evaluated {folder.name}", flush=True)
    site = out / "site"
    run_cli(
        [
            "in9-leaderboard",
            "build",
            str(results_dir),
            "--out",
            str(site),
            "--data",
            str(data),
            "--allow-unpinned",
        ]
    )
    rows = {
        name: json.loads((results_dir / folder.name / "results.json").read_text())
        for name, folder in folders.items()
    }
    print()
    print(format_table(rows))
    print()
    print(f"leaderboard page: {site / 'index.html'}  (and {site / 'leaderboard.md'})")
    print(f"results:          {results_dir}/<model>/results.json, predictions.parquet, challenge.parquet")
    print(f"models:           {out / 'models'}   test data: {data}")
    print(f"demo time:        {time.perf_counter() - started:.0f} s")
    return rows
