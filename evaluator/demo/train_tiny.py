"""Train a tiny IN-9 classifier on CPU: the offline demo's models.

A small, seeded script, not a framework: a 4-stage basic-block ResNet from transformers with the 9 IN-9
label names, trained with AdamW on uint8 image arrays, saved with ``save_pretrained`` beside an image
processor config, so ``in9-eval --model <folder>`` loads it like any Hub classifier. The evaluator never
imports this module.

Same arrays, same seed, same CPU and torch build: byte-identical weights (training runs on one thread, so the
core count does not matter). Another CPU can differ in the last bits: oneDNN and MKL choose their kernels, and
so their summation order, per instruction set; the demo's figures move with it (the README says so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import ConvNextImageProcessorPil, ResNetConfig, ResNetForImageClassification

from in9_builder.classes import CLASS_NAMES, MIXED_VARIANTS
from in9_builder.render import draw_backgrounds, render_variant
from in9_builder.scene import Scene

# The processor config saved with the model carries these, so the evaluator normalises as training did.
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 6
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    augment: bool = True  # random flips and transposes (synthetic shapes come at any rotation anyway)


def tiny_resnet_config(labels: Sequence[str] = CLASS_NAMES) -> ResNetConfig:
    """A tiny ResNet (basic blocks, widths 16-128) with these label names (default: the 9 IN-9 classes)."""
    id2label = dict(enumerate(labels))
    return ResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32, 64, 128],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        num_labels=len(id2label),
        id2label=id2label,
        label2id={name: i for i, name in id2label.items()},
    )


def save_random_tiny_resnet(
    folder: str | Path, labels: Sequence[str], *, seed: int = 0, processor_kwargs: dict | None = None
) -> Path:
    """A randomly initialised tiny ResNet + a ResNet-50-style image processor (resize 256, crop 224), saved
    as a new user saves a model: what the tests and benchmarks score when they need a model, not accuracy."""
    torch.manual_seed(seed)
    model = ResNetForImageClassification(tiny_resnet_config(labels)).eval()
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
    return Path(folder)


def training_images(scenes: Sequence[Scene], variant: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The scenes rendered as one IN-9 variant: ``(N,H,W,3) uint8, (N,) int64``.

    Mixed variants draw their backgrounds with the benchmark's own seeded pairing, over the training scenes.
    """
    by_id = {scene.image_id: scene for scene in scenes}
    pairing = None
    if variant in MIXED_VARIANTS:
        pairing = draw_backgrounds(seed, {s.image_id: s.label for s in scenes}, variant)
    images = [render_variant(variant, s, by_id[pairing[s.image_id]] if pairing else None) for s in scenes]
    return np.stack(images), np.array([s.label for s in scenes], dtype=np.int64)


def to_pixel_values(images: np.ndarray) -> torch.Tensor:
    """uint8 (N,H,W,3) -> normalised float32 (N,3,H,W): the arithmetic the saved processor config implies."""
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def _dihedral(batch: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """One of the 8 flips/rotations by 90 degrees for the whole batch, drawn from ``rng``."""
    flip_h, flip_w, transpose = torch.randint(2, (3,), generator=rng).tolist()
    if flip_h:
        batch = batch.flip(-2)
    if flip_w:
        batch = batch.flip(-1)
    return batch.transpose(-1, -2) if transpose and batch.shape[-1] == batch.shape[-2] else batch


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    settings: TrainSettings = TrainSettings(),
    log: Callable[[str], None] | None = None,
) -> ResNetForImageClassification:
    """Train a fresh tiny ResNet on ``images`` (N,H,W,3 uint8) and ``labels`` (N,) in 0..8; returns it in eval
    mode."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be (N,H,W,3) uint8, got {images.shape} {images.dtype}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    pixel_values = to_pixel_values(images)
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    threads = torch.get_num_threads()
    # One thread: the same float summation order whatever the core count (byte-identical weights on one CPU
    # type; another instruction set picks other kernels), and on small batches it is as fast as two, much
    # faster when the cores are shared.
    torch.set_num_threads(1)
    try:
        return _train(pixel_values, targets, settings, log)
    finally:
        torch.set_num_threads(threads)


def _train(
    pixel_values: torch.Tensor,
    targets: torch.Tensor,
    settings: TrainSettings,
    log: Callable[[str], None] | None,
) -> ResNetForImageClassification:
    count = len(targets)
    # Fork the global RNG so that training is seeded without changing the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = ResNetForImageClassification(tiny_resnet_config())
        order_rng = torch.Generator().manual_seed(settings.seed)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
        )
        steps_per_epoch = -(-count // settings.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=settings.learning_rate, total_steps=settings.epochs * steps_per_epoch
        )
        model.train()
        for epoch in range(settings.epochs):
            order = torch.randperm(count, generator=order_rng)
            total_loss, correct = 0.0, 0
            for start in range(0, count, settings.batch_size):
                batch = order[start : start + settings.batch_size]
                inputs = pixel_values[batch]
                if settings.augment:
                    inputs = _dihedral(inputs, order_rng)
                logits = model(pixel_values=inputs).logits
                loss = torch.nn.functional.cross_entropy(logits, targets[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total_loss += loss.item() * len(batch)
                correct += int((logits.argmax(-1) == targets[batch]).sum())
            if log is not None:
                log(
                    f"  epoch {epoch + 1}/{settings.epochs}: loss {total_loss / count:.3f}, "
                    f"train accuracy {correct / count:.1%}"
                )
    return model.eval()


def save_classifier(model: ResNetForImageClassification, out_dir: str | Path, image_size: int) -> Path:
    """Write a transformers model folder: config (label names), safetensors weights, image processor config.

    The processor keeps ``image_size`` images as they are (``crop_pct=1``) and normalises with the training
    mean/std, so the ``paper`` and ``processor`` protocols see the same pixels.
    """
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    processor = ConvNextImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_pct=1.0,
        resample=2,  # bilinear
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(IMAGE_MEAN),
        image_std=list(IMAGE_STD),
    )
    processor.save_pretrained(out_dir)
    return out_dir
