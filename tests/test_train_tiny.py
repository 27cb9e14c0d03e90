"""The demo's tiny trainer: seeded, byte-identical on CPU, saved as a loadable transformers classifier."""

import dataclasses

import numpy as np
import pytest
import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification

from evaluator.demo.train_tiny import (
    TrainSettings,
    save_classifier,
    to_pixel_values,
    train_classifier,
    training_images,
)
from in9_builder.classes import CLASS_NAMES
from in9_builder.render import composite, draw_backgrounds, tile_background
from in9_builder.scene import Scene

SIZE = 16


def _grey_level_task(per_class: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Each class is a flat image of its own grey level plus a little noise: trivially learnable."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(9), per_class)
    noise = rng.integers(0, 8, (len(labels), SIZE, SIZE, 3))
    return (labels[:, None, None, None] * 28 + noise).astype(np.uint8), labels


def _scenes() -> list[Scene]:
    """Two scenes per class: a square foreground valued by class on a background valued by image index."""
    scenes = []
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[6:10, 6:10] = 1
    for label in range(9):
        for k in range(2):
            index = 2 * label + k
            image = np.full((SIZE, SIZE, 3), 100 + index, np.uint8)
            image[mask == 1] = 10 * label
            scenes.append(Scene(f"img_{index:02d}", label, image, mask.copy(), (5, 5, 10, 10)))
    return scenes


SETTINGS = TrainSettings(epochs=10, batch_size=8, learning_rate=1e-2, seed=0)


@pytest.fixture(scope="module")
def trained():
    images, labels = _grey_level_task()
    return train_classifier(images, labels, SETTINGS), images, labels


def test_same_seed_gives_byte_identical_weights(trained):
    model, images, labels = trained
    again = train_classifier(images, labels, SETTINGS)
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_other_seed_gives_other_weights(trained):
    model, images, labels = trained
    other = train_classifier(images, labels, dataclasses.replace(SETTINGS, seed=1))
    first = next(iter(model.state_dict()))
    assert not torch.equal(model.state_dict()[first], other.state_dict()[first])


def test_training_leaves_the_global_rng_alone(trained):
    _, images, labels = trained
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_classifier(images[:9], labels[:9], TrainSettings(epochs=1, batch_size=9))
    assert torch.equal(torch.rand(3), expected)


def test_learns_a_separable_task(trained):
    model, images, labels = trained
    with torch.inference_mode():
        predictions = model(pixel_values=to_pixel_values(images)).logits.argmax(-1).numpy()
    assert (predictions == labels).mean() == 1.0


def test_saved_folder_loads_with_in9_labels_and_matching_preprocessing(trained, tmp_path):
    model, images, _ = trained
    save_classifier(model, tmp_path / "m", image_size=SIZE)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path / "m")
    assert [loaded.config.id2label[i] for i in range(9)] == list(CLASS_NAMES)
    processor = AutoImageProcessor.from_pretrained(tmp_path / "m", backend="pil")
    pixel_values = processor(images=list(images[:3]), return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (3, 3, SIZE, SIZE)
    assert torch.allclose(pixel_values, to_pixel_values(images[:3]), atol=1e-6)
    with torch.inference_mode():
        assert torch.equal(loaded(pixel_values=pixel_values).logits, model(pixel_values=pixel_values).logits)


def test_original_training_images_are_the_scenes():
    scenes = _scenes()
    images, labels = training_images(scenes, "original", seed=0)
    assert images.shape == (18, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert labels.tolist() == [s.label for s in scenes]
    assert all(np.array_equal(img, s.image) for img, s in zip(images, scenes, strict=True))


def test_mixed_rand_training_images_use_the_benchmark_pairing():
    scenes = _scenes()
    by_id = {s.image_id: s for s in scenes}
    images, labels = training_images(scenes, "mixed_rand", seed=3)
    pairing = draw_backgrounds(3, {s.image_id: s.label for s in scenes}, "mixed_rand")
    assert labels.tolist() == [s.label for s in scenes]
    for image, scene in zip(images, scenes, strict=True):
        bg = by_id[pairing[scene.image_id]]
        assert np.array_equal(image, composite(scene.image, scene.mask, tile_background(bg.image, bg.bbox)))
    # the foreground stays, the background changes for at least some images
    assert any(not np.array_equal(img, s.image) for img, s in zip(images, scenes, strict=True))


def test_rejects_images_that_are_not_uint8_nhwc():
    with pytest.raises(ValueError, match="uint8"):
        train_classifier(np.zeros((2, 3, SIZE, SIZE), np.float32), np.zeros(2, np.int64))
