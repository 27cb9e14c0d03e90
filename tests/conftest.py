"""Shared test set-up. Fixtures live in per-area plugin modules so that each area owns its own."""

import os

# Never let a test reach the network: a blocked Hub call otherwise waits for its timeout.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = [
    "tests.fixtures_builder",
    "tests.fixtures_evaluator",
    "tests.fixtures_toolkit",
    "tests.fixtures_leaderboard",
]
