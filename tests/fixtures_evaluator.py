"""Session fixtures for the evaluator tests: tiny random classifiers saved as a new user would save them."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluator.demo.train_tiny import save_random_tiny_resnet

# A 9-way head with the IN-9 names shuffled and spelled differently, to exercise name matching.
IN9_SPELLINGS = (
    "Fish",
    "dog",
    "Wheeled_Vehicle",
    "bird",
    "Musical-Instrument",
    "REPTILE",
    "carnivore",
    "insect",
    "primate",
)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """{"in1k": folder, "in9": folder}: tiny ResNets with ImageNet-1k names and with the 9 IN-9 names."""
    from in9_builder.classes import imagenet1k_names

    root = tmp_path_factory.mktemp("tiny_models")
    return {
        "in1k": save_random_tiny_resnet(root / "tiny-resnet-in1k", imagenet1k_names(), seed=0),
        "in9": save_random_tiny_resnet(root / "tiny-resnet-in9", IN9_SPELLINGS, seed=1),
    }
