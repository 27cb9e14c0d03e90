"""``in9-demo``: the paper's main finding in miniature, offline, on CPU (spec §8).

Orchestration only: build the synthetic data, train two tiny classifiers (evaluator.train_tiny) — one on
the training scenes as they are (class-correlated backgrounds, "original"), one on their Mixed-Rand
rendering — then run the user's own CLIs on both (``in9-eval --challenge``, ``in9-leaderboard build``) and
print a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from in9_builder.errors import In9Error

MARKER = ".in9-demo"  # written into --out, so that a rerun knows the folder is its own to replace
MODELS = ("original", "mixed_rand")  # the training set each model sees, which is also its name
COLUMNS = (
    ("Original", ("accuracy", "original")),
    ("Mixed-Same", ("accuracy", "mixed_same")),
    ("Mixed-Rand", ("accuracy", "mixed_rand")),
    ("BG-gap", ("bg_gap",)),
    ("Only-BG-T", ("accuracy", "only_bg_t")),
    ("Challenge", ("challenge", "challenge_accuracy")),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="in9-demo",
        description="Offline demo: train a tiny model on synthetic IN-9 scenes with class-correlated "
        "backgrounds and one on their Mixed-Rand version, evaluate both with in9-eval --challenge, "
        "build the leaderboard.",
    )
    parser.add_argument("--out", default="demo_out",
                        help="output folder (default: demo_out); a previous demo's output there is replaced")
    parser.add_argument("--per-class", type=int, default=20, help="test images per class (default: 20)")
    parser.add_argument("--train-per-class", type=int, default=100, help="training images per class (100)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default: 64)")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs per model (default: 6)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size (default: 64)")
    parser.add_argument("--learning-rate", type=float, default=5e-3, help="peak learning rate (5e-3)")
    parser.add_argument("--bg-correlation", type=float, default=0.9,
                        help="probability that a scene's background is its own class's (default: 0.9)")
    parser.add_argument("--fg-hue-correlation", type=float, default=0.9,
                        help="probability that a foreground has its class's hue (default: 0.9)")
    parser.add_argument("--seed", type=int, default=0, help="data, background draw and training seed (0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out folder even if it is not a previous demo's output")
    return parser.parse_args(argv)


def _source_kwargs(args: argparse.Namespace, split: str) -> dict:
    counts = {"per_class": args.per_class, "train_per_class": 0} if split == "test" else {
        "per_class": 2, "train_per_class": args.train_per_class}  # per_class 2: the smallest valid test split
    return {**counts, "size": args.size, "scene_seed": args.seed, "bg_correlation": args.bg_correlation,
            "fg_hue_correlation": args.fg_hue_correlation}


def build_test_export(args: argparse.Namespace, out: Path) -> Path:
    from in9_builder.export import export

    return export("synthetic", out, seed=args.seed, source_kwargs=_source_kwargs(args, "test"), num_proc=1)


def train_models(args: argparse.Namespace, models_dir: Path) -> dict[str, Path]:
    from evaluator.train_tiny import TrainSettings, save_classifier, train_classifier, training_images
    from in9_builder.sources.synthetic import SyntheticSource

    scenes = list(SyntheticSource(**_source_kwargs(args, "train")).scenes("train"))
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                             seed=args.seed)
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


def run_demo(args: argparse.Namespace) -> dict[str, dict]:
    """The whole demo; returns each model's results.json, keyed by the training set's name."""
    out = Path(args.out).absolute()
    if out.exists():
        if not (args.overwrite or (out / MARKER).is_file()):
            raise In9Error(f"--out {out} already exists and is not a previous demo's output; "
                           "pass --overwrite or choose another folder")
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
        # Batches of 256 small images: ~3x faster on CPU than the default 32; results do not depend on it.
        run_cli(["in9-eval", "--model", str(folder), "--data", str(data), "--challenge", "--no-progress",
                 "--batch-size", "256", "--output-dir", str(results_dir / folder.name),
                 "--cache-dir", str(out / "cache")])
        print(f"[{time.perf_counter() - started:.0f} s] evaluated {folder.name}", flush=True)
    site = out / "site"
    run_cli(["in9-leaderboard", "build", str(results_dir), "--out", str(site), "--data", str(data),
             "--allow-unpinned"])
    rows = {name: json.loads((results_dir / folder.name / "results.json").read_text())
            for name, folder in folders.items()}
    print()
    print(format_table(rows))
    print()
    print(f"leaderboard page: {site / 'index.html'}  (and {site / 'leaderboard.md'})")
    print(f"results:          {results_dir}/<model>/results.json, predictions.parquet, challenge.parquet")
    print(f"models:           {out / 'models'}   test data: {data}")
    print(f"demo time:        {time.perf_counter() - started:.0f} s")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run_demo(args)
    except In9Error as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
