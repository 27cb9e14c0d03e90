"""The ``classifier`` kind: a transformers ``AutoModelForImageClassification`` checkpoint with its image
processor (``preprocessor_config.json``) and its head's labels (``config.id2label``)."""

from __future__ import annotations

from pathlib import Path

import torch

from evaluator.model.hub import check_weights
from evaluator.model.labels import LabelSpace, resolve_label_space
from evaluator.model.preprocess import Preprocess
from evaluator.model.processor_check import ProcessorPreprocess, checked_preprocess
from in9_builder.errors import In9Error


def is_classifier(config) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    has_auto_map = "AutoModelForImageClassification" in (getattr(config, "auto_map", None) or {})
    return config.model_type in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES or has_auto_map


def load_classifier_module(
    folder: Path, model_id: str, config, *, trust_remote_code: bool, allow_pickle: bool
) -> torch.nn.Module:
    from transformers import AutoModelForImageClassification

    if (
        "AutoModelForImageClassification" in (getattr(config, "auto_map", None) or {})
        and not trust_remote_code
    ):
        raise In9Error(
            f"model={model_id}: needs custom code from the repository; review it and pass "
            "trust_remote_code=True"
        )
    check_weights(folder, model_id, allow_pickle)
    model = AutoModelForImageClassification.from_pretrained(
        folder, trust_remote_code=trust_remote_code, use_safetensors=None if allow_pickle else True
    )
    return model.eval()


def load_processor(
    folder: Path, model_id: str, protocol: str
) -> tuple[Preprocess | ProcessorPreprocess, dict]:
    """The model's preprocessing under `protocol`, checked against its own image processor (PIL backend),
    and the record of the check (results.json model.preprocessing): the batched tensor path when it equals
    the processor, else the processor itself per image."""
    from transformers import AutoImageProcessor

    if not (folder / "preprocessor_config.json").is_file():
        raise In9Error(
            f"model={model_id}: no preprocessor_config.json, so its mean/std are unknown; save the "
            "model's image processor next to it (processor.save_pretrained(folder))"
        )
    try:
        processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
    except (ImportError, OSError, ValueError) as exc:
        raise In9Error(
            f"model={model_id}: transformers cannot load its image processor with the PIL backend "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return checked_preprocess(processor, protocol)


def load_classifier(
    folder: Path,
    model_id: str,
    config,
    *,
    protocol: str,
    label_map,
    trust_remote_code: bool,
    allow_pickle: bool,
) -> tuple[torch.nn.Module, Preprocess | ProcessorPreprocess, LabelSpace, dict]:
    """(module, preprocessing, label space, extra results.json model fields) of a classifier checkpoint."""
    module = load_classifier_module(
        folder, model_id, config, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle
    )
    space = resolve_label_space(config.id2label, label_map)
    preprocess, record = load_processor(folder, model_id, protocol)
    return module, preprocess, space, {"preprocessing": record}
