"""The model zoo, checked offline: one tiny random checkpoint per family of ``tests/zoo/registry.json``.

For every family (the Hub's own ``config.json`` / ``preprocessor_config.json``, shrunk by
``tests/zoo_builder.py`` into an offline Hub cache): ``load_model("org/name")`` works with
``HF_HUB_OFFLINE=1`` (or refuses a headless checkpoint), the label space is the expected one, the
``processor`` protocol gives the model's own PIL image processor's tensor, the ``paper`` protocol gives that
processor's tensor without resize and crop, and one end-to-end evaluation scores like an independent forward
pass through the model's own processor and model. A check whose support is another part of issue 13 is a
strict xfail named by the registry's ``needs`` (so a pass is noticed when that part is merged).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evaluator.model.loading import load_model
from in9_builder.classes import IN1K_TO_IN9, NUM_CLASSES
from in9_builder.errors import In9Error
from tests import zoo_builder

REGISTRY = zoo_builder.registry()
# (height, width): square, landscape, portrait
SHAPES = ((224, 224), (200, 300), (333, 250))
ATOL_TENSOR = 1e-5
ATOL_SCORES = 1e-4


def _params(check: str, where=lambda entry: True) -> list:
    params = []
    for family, entry in REGISTRY.items():
        if not where(entry):
            continue
        part = zoo_builder.needs(family, check)
        marks = [pytest.mark.xfail(reason=f"needs {part}", strict=True)] if part else []
        params.append(pytest.param(family, id=family, marks=marks))
    return params


def _classifies(entry: dict) -> bool:
    return entry["kind"] != "refused"


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory):
    """The offline Hub cache the families are built into (each once, on first use)."""
    return tmp_path_factory.mktemp("zoo_hub_cache")


@pytest.fixture
def hub(zoo_cache, monkeypatch):
    """``hub(family) -> snapshot folder``, with the Hub cache pointed at the zoo's."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(zoo_cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(zoo_cache))
    return lambda family: zoo_builder.build(family, zoo_cache)


def _images(shape: tuple[int, int], count: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Deterministic uint8 HxWx3 images: a colour gradient with noise (worst case for resampling)."""
    rng = np.random.default_rng(seed + 7 * shape[0] + shape[1])
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width]
    out = []
    for i in range(count):
        base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy + 40 * i) % 256], axis=-1)
        noise = rng.integers(-40, 41, size=base.shape)
        out.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return out


def _batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _reference_processor(entry: dict, snapshot):
    """The model's own image processor (PIL backend for transformers processors)."""
    from transformers import AutoImageProcessor

    if entry["labels"] == "timm":
        return AutoImageProcessor.from_pretrained(snapshot)
    return AutoImageProcessor.from_pretrained(snapshot, backend="pil")


def _reference_pixels(processor, images: list[np.ndarray], **flags) -> torch.Tensor:
    flags = {name: value for name, value in flags.items() if hasattr(processor, name)}
    pil = [Image.fromarray(image) for image in images]
    return processor(images=pil, return_tensors="pt", **flags)["pixel_values"]


def _expected_to_in9(entry: dict) -> np.ndarray | None:
    if entry["kind"] in ("imagenet-1k", "zero-shot:imagenet-1k"):  # zero-shot: one prompt set per 1k class
        return IN1K_TO_IN9
    if entry["labels"] == "background+imagenet-1k":
        return np.concatenate([[-1], IN1K_TO_IN9])
    return None


@pytest.mark.slow  # builds every family's checkpoint: the whole zoo runs in CI, not in the quick loop
@pytest.mark.parametrize("family", _params("load"))
def test_loads_offline(family, hub):
    entry = REGISTRY[family]
    hub(family)
    if not _classifies(entry):
        with pytest.raises(In9Error, match=f"(?i){entry['refusal']}"):
            load_model(entry["hub_id"])
        return
    loaded = load_model(entry["hub_id"])
    assert (loaded.model_id, loaded.source) == (entry["hub_id"], "hub")
    assert loaded.revision == zoo_builder.fake_sha(entry["hub_id"])
    size = entry["input_size"]
    with torch.inference_mode():
        logits = loaded.model(loaded.preprocess(_batch(_images((size, size)))))
    assert logits.shape == (2, loaded.num_labels)
    assert torch.isfinite(logits).all()


@pytest.mark.slow  # builds every family's checkpoint: the whole zoo runs in CI, not in the quick loop
@pytest.mark.parametrize("family", _params("labels", _classifies))
def test_label_space(family, hub):
    entry = REGISTRY[family]
    hub(family)
    space = load_model(entry["hub_id"]).label_space
    assert space.kind == entry["kind"]
    expected = _expected_to_in9(entry)
    if expected is not None:
        np.testing.assert_array_equal(space.to_in9, expected)
    else:  # 21k heads, zero-shot prompts: every IN-9 class reachable, nothing outside -1..8
        assert set(np.unique(space.to_in9)) <= set(range(-1, NUM_CLASSES))
        assert set(range(NUM_CLASSES)) <= set(np.unique(space.to_in9))


@pytest.mark.slow  # builds every family's checkpoint: the whole zoo runs in CI, not in the quick loop
@pytest.mark.parametrize("family", _params("processor", _classifies))
def test_processor_protocol_is_the_models_processor(family, hub):
    entry = REGISTRY[family]
    snapshot = hub(family)
    loaded = load_model(entry["hub_id"], protocol="processor")
    processor = _reference_processor(entry, snapshot)
    for shape in SHAPES:
        images = _images(shape)
        ours = loaded.preprocess(_batch(images))
        reference = _reference_pixels(processor, images)
        assert ours.shape == reference.shape, shape
        torch.testing.assert_close(
            ours, reference.float(), atol=ATOL_TENSOR, rtol=0, msg=lambda m, shape=shape: f"{shape}: {m}"
        )


def _paper_reference(entry: dict, snapshot, images: list[np.ndarray]) -> torch.Tensor:
    """The model's processor without resize and crop; for timm repos ToTensor + normalise with the
    pretrained_cfg's mean/std (timm's eval transform without resize and crop)."""
    if entry["labels"] == "timm":
        import json

        cfg = json.loads((snapshot / "config.json").read_text())["pretrained_cfg"]
        mean = np.asarray(cfg["mean"], dtype=np.float32)
        std = np.asarray(cfg["std"], dtype=np.float32)
        x = np.stack(images).astype(np.float32) / 255.0
        return torch.from_numpy(((x - mean) / std).transpose(0, 3, 1, 2).copy())
    processor = _reference_processor(entry, snapshot)
    return _reference_pixels(processor, images, do_resize=False, do_center_crop=False)


@pytest.mark.slow  # builds every family's checkpoint: the whole zoo runs in CI, not in the quick loop
@pytest.mark.parametrize("family", _params("paper", _classifies))
def test_paper_protocol_is_the_processor_without_resize_or_crop(family, hub):
    entry = REGISTRY[family]
    snapshot = hub(family)
    loaded = load_model(entry["hub_id"])
    size = entry["input_size"]
    images = _images((size, size))
    ours = loaded.preprocess(_batch(images))
    reference = _paper_reference(entry, snapshot, images)
    assert ours.shape == reference.shape == (2, 3, size, size)
    torch.testing.assert_close(ours, reference.float(), atol=ATOL_TENSOR, rtol=0)
    # IN-9's 224 px images reach the model at its input size
    assert loaded.preprocess(_batch(_images((224, 224)))).shape == (2, 3, size, size)


def test_registry_and_readme_agree():
    """Every family has its files, a known label recipe and needs, and a row in the README's zoo table."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for family, entry in REGISTRY.items():
        folder = zoo_builder.ZOO / family
        assert (folder / "config.json").is_file(), family
        assert (folder / "preprocessor_config.json").is_file() == (entry["labels"] != "timm"), family
        assert entry["labels"] in ("imagenet-1k", "background+imagenet-1k", "none", "zero-shot", "timm")
        assert set(entry["needs"]) <= {"*", *zoo_builder.CHECKS}, family
    assert zoo_builder.readme_table() in readme, "README zoo table differs from the registry: regenerate it"


@pytest.fixture(scope="session")
def zoo_export(tmp_path_factory):
    """A tiny synthetic IN-9 export at 224 px: two scenes per class (the source's minimum), Original only."""
    from tests.fixtures_builder import make_synthetic_export

    return make_synthetic_export(
        tmp_path_factory.mktemp("zoo_export"), per_class=2, size=224, train_per_class=0, variants=["original"]
    )


def _superclass_scores(logits: torch.Tensor, to_in9: np.ndarray) -> np.ndarray:
    probs = logits.double().softmax(dim=1).numpy()
    scores = np.zeros((len(probs), NUM_CLASSES))
    for label in range(NUM_CLASSES):
        scores[:, label] = probs[:, to_in9 == label].sum(axis=1)
    return scores


@pytest.mark.slow
@pytest.mark.parametrize("family", _params("e2e", _classifies))
def test_end_to_end_scores_match_an_independent_forward(family, hub, zoo_export, tmp_path):
    import pyarrow.parquet as pq
    from datasets import load_dataset
    from transformers import AutoModelForImageClassification

    from evaluator.api import evaluate

    entry = REGISTRY[family]
    snapshot = hub(family)
    evaluate(
        entry["hub_id"],
        data=str(zoo_export),
        variants=["original"],
        preprocess="processor",
        batch_size=4,
        limit=1,  # one image per class: 9 images, 3 batches
        use_cache=False,
        progress=False,
        output_dir=tmp_path / "out",
    )
    table = pq.read_table(tmp_path / "out" / "predictions.parquet").to_pylist()
    rows = load_dataset("parquet", data_files=str(zoo_export / "original" / "test-*.parquet"), split="train")
    by_id = {row["image_id"]: row for row in table}
    rows = [row for row in rows if row["image_id"] in by_id]
    assert len(table) == len(rows) == NUM_CLASSES
    assert sorted(row["label"] for row in rows) == list(range(NUM_CLASSES))

    processor = _reference_processor(entry, snapshot)
    to_in9 = _expected_to_in9(entry)
    if to_in9 is None or entry["labels"] == "zero-shot":  # the text classifier is the evaluator's own
        loaded = load_model(entry["hub_id"], protocol="processor")
        model, to_in9 = loaded.model, loaded.label_space.to_in9
    else:
        model = AutoModelForImageClassification.from_pretrained(snapshot).eval()
    images = [np.asarray(row["image"].convert("RGB")) for row in rows]
    with torch.inference_mode():
        out = model(_reference_pixels(processor, images))
    logits = out if isinstance(out, torch.Tensor) else out.logits
    expected = _superclass_scores(logits, to_in9)
    expected_pred = to_in9[logits.argmax(dim=1).numpy()]

    for i, row in enumerate(rows):
        got = by_id[row["image_id"]]
        np.testing.assert_allclose(got["scores"], expected[i], atol=ATOL_SCORES, rtol=0)
        assert got["prediction"] == expected_pred[i]
