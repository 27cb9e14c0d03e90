"""Session fixtures for the evaluator tests: tiny random classifiers saved as a new user would save them."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def save_tiny_resnet(
    folder: Path, labels: list[str] | tuple[str, ...], *, seed: int = 0, processor_kwargs: dict | None = None
) -> Path:
    """A random tiny ResNet (0.44 M params) + a ResNet-50-style image processor, saved to ``folder``."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification
    from transformers.models.convnext.image_processing_pil_convnext import ConvNextImageProcessorPil

    config = ResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32, 64, 128],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    torch.manual_seed(seed)
    model = ResNetForImageClassification(config).eval()
    model.save_pretrained(folder)
    kwargs = dict(
        crop_pct=0.875,
        size={"shortest_edge": 224},
        resample=3,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    kwargs.update(processor_kwargs or {})
    ConvNextImageProcessorPil(**kwargs).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """{"in1k": folder, "in9": folder}: tiny ResNets with ImageNet-1k names and with the 9 IN-9 names."""
    from in9_builder.classes import imagenet1k_names

    root = tmp_path_factory.mktemp("tiny_models")
    return {
        "in1k": save_tiny_resnet(root / "tiny-resnet-in1k", imagenet1k_names(), seed=0),
        "in9": save_tiny_resnet(root / "tiny-resnet-in9", IN9_SPELLINGS, seed=1),
    }
