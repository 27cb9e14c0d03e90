"""``in9-demo``: the paper's main finding in miniature, offline, on CPU (:mod:`evaluator.demo.run`)."""

from __future__ import annotations

import argparse
import sys

from evaluator.demo.run import DemoSettings, run_demo
from in9_builder.errors import flag_names, run_command

DEFAULTS = DemoSettings()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="in9-demo",
        description="Offline demo: train a tiny model on synthetic IN-9 scenes with class-correlated "
        "backgrounds and one on their Mixed-Rand version, evaluate both with in9-eval --challenge, "
        "build the leaderboard.",
    )
    parser.add_argument(
        "--out",
        default=DEFAULTS.out,
        help="output folder (default: demo_out); a previous demo's output there is replaced",
    )
    parser.add_argument(
        "--per-class", type=int, default=DEFAULTS.per_class, help="test images per class (default: 20)"
    )
    parser.add_argument(
        "--train-per-class",
        type=int,
        default=DEFAULTS.train_per_class,
        help="training images per class (100)",
    )
    parser.add_argument("--size", type=int, default=DEFAULTS.size, help="image side in pixels (default: 64)")
    parser.add_argument(
        "--epochs", type=int, default=DEFAULTS.epochs, help="training epochs per model (default: 6)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULTS.batch_size, help="training batch size (default: 64)"
    )
    parser.add_argument(
        "--learning-rate", type=float, default=DEFAULTS.learning_rate, help="peak learning rate (5e-3)"
    )
    parser.add_argument(
        "--bg-correlation",
        type=float,
        default=DEFAULTS.bg_correlation,
        help="probability that a scene's background is its own class's (default: 0.9)",
    )
    parser.add_argument(
        "--fg-hue-correlation",
        type=float,
        default=DEFAULTS.fg_hue_correlation,
        help="probability that a foreground has its class's hue (default: 0.9)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULTS.seed, help="data, background draw and training seed (0)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out folder even if it is not a previous demo's output",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    settings = DemoSettings(**vars(parser.parse_args(argv)))

    def command() -> int:
        run_demo(settings)
        return 0

    return run_command(command, flag_names(parser))


if __name__ == "__main__":
    sys.exit(main())
