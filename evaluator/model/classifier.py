"""The ``classifier`` kind: a transformers ``AutoModelForImageClassification`` checkpoint with its image
processor (``preprocessor_config.json``) and its head's labels (``config.id2label``).

Never a random head: a checkpoint whose ``architectures`` names no classification head (a base model such as
``ViTModel``, ``Dinov2Model``, ``CLIPModel``) is refused before anything is built, and one whose weights leave
any parameter missing or mismatched (``output_loading_info``) is refused instead of scored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import torch

from evaluator.model.hub import check_weights
from evaluator.model.labels import LabelSpace, resolve_label_space
from evaluator.model.preprocess import Preprocess
from evaluator.model.processor_check import ProcessorPreprocess, checked_preprocess
from in9_builder.errors import In9Error

# What an architecture is, from the first transformers auto mapping that lists it (most specific first).
_TASKS = (
    ("ZERO_SHOT_IMAGE_CLASSIFICATION", "a CLIP-like image-text model"),
    ("OBJECT_DETECTION", "an object-detection model"),
    ("ZERO_SHOT_OBJECT_DETECTION", "a zero-shot object-detection model"),
    ("SEMANTIC_SEGMENTATION", "a semantic-segmentation model"),
    ("INSTANCE_SEGMENTATION", "an instance-segmentation model"),
    ("UNIVERSAL_SEGMENTATION", "a segmentation model"),
    ("IMAGE_SEGMENTATION", "a segmentation model"),
    ("DEPTH_ESTIMATION", "a depth-estimation model"),
    ("MASKED_IMAGE_MODELING", "a masked-image-modeling model"),
    ("VIDEO_CLASSIFICATION", "a video classifier"),
    ("IMAGE_TEXT_TO_TEXT", "a vision-language model"),
    ("CAUSAL_LM", "a text model (causal language model)"),
    ("MASKED_LM", "a text model (masked language model)"),
    ("SEQ_TO_SEQ_CAUSAL_LM", "a text model (sequence-to-sequence)"),
    ("SEQUENCE_CLASSIFICATION", "a text classifier"),
    ("TOKEN_CLASSIFICATION", "a text model (token classification)"),
    ("QUESTION_ANSWERING", "a text model (question answering)"),
    ("AUDIO_CLASSIFICATION", "an audio classifier"),
    ("BACKBONE", "a backbone"),
    ("PRETRAINING", "a pretraining model"),
    ("IMAGE", "a vision base model"),
    ("", "a base model"),
)
_CLIP_LIKE = ("clip", "siglip")  # model_type fragments of image-text models whose vision towers also exist


@lru_cache(maxsize=1)
def _task_of_architecture() -> dict[str, str]:
    from transformers.models.auto import modeling_auto

    found: dict[str, str] = {}
    for task, what in _TASKS:
        names = getattr(
            modeling_auto, f"MODEL_FOR_{task}_MAPPING_NAMES" if task else "MODEL_MAPPING_NAMES", {}
        )
        for value in names.values():
            for arch in (value,) if isinstance(value, str) else value:
                found.setdefault(arch, what)
    return found


@lru_cache(maxsize=1)
def _classification_heads() -> frozenset[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    heads: set[str] = set()
    for value in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES.values():
        heads.update((value,) if isinstance(value, str) else value)
    return frozenset(heads)


def is_classification_head(architecture: str) -> bool:
    """An architecture class with an image-classification head (any transformers one, or a remote-code
    class named like one)."""
    return architecture in _classification_heads() or "ForImageClassification" in architecture


# For classes no auto mapping lists (BeitForMaskedImageModeling, remote code): what their name says.
_SUFFIXES = (
    ("ForMaskedImageModeling", "a masked-image-modeling model"),
    ("ForPreTraining", "a pretraining model"),
    ("ForObjectDetection", "an object-detection model"),
    ("ForSemanticSegmentation", "a semantic-segmentation model"),
    ("Backbone", "a backbone"),
    ("Model", "a base model"),
)


def describe_architecture(architecture: str) -> str:
    """'a base model', 'an object-detection model', ...: what a transformers architecture class is."""
    if architecture in _task_of_architecture():
        return _task_of_architecture()[architecture]
    suffix = next((what for end, what in _SUFFIXES if architecture.endswith(end)), None)
    return suffix or "a model of an unknown kind"


def is_classifier(config) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    has_auto_map = "AutoModelForImageClassification" in (getattr(config, "auto_map", None) or {})
    return config.model_type in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES or has_auto_map


def _is_clip_like(config, architecture: str) -> bool:
    text = f"{config.model_type} {architecture}".lower()
    return any(part in text for part in _CLIP_LIKE)


_VISION_WITHOUT_HEAD = (
    "a vision base model",
    "a CLIP-like image-text model",
    "a backbone",
    "a masked-image-modeling model",
)


def is_headless_vision_model(config, architecture: str) -> bool:
    """A vision model without a classification head (a base model, backbone, CLIP-like tower)."""
    what = describe_architecture(architecture)
    return what in _VISION_WITHOUT_HEAD or (what == "a base model" and _is_clip_like(config, architecture))


def headless_error(model_id: str, config, architecture: str) -> In9Error:
    """The one line for a checkpoint without classifier weights: what it is and what to use instead."""
    found = f"{architecture} ({describe_architecture(architecture)}, model_type {config.model_type!r})"
    random_head = "scoring it would use a newly initialised, random classification head"
    if _is_clip_like(config, architecture):
        return In9Error(
            f"model={model_id}: {found} has no image-classification head; {random_head}. Score a CLIP-like "
            "model zero-shot (the full image-text checkpoint, whose text tower names the classes), or pass "
            "a checkpoint fine-tuned for image classification"
        )
    return In9Error(
        f"model={model_id}: {found} has no image-classification head; {random_head}. Pass a checkpoint "
        "fine-tuned for image classification (config.json architectures ending in ForImageClassification)"
    )


def check_has_head(model_id: str, config) -> None:
    """Refuse, before building anything, a checkpoint whose ``architectures`` lists no classification head."""
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(is_classification_head(a) for a in architectures):
        raise headless_error(model_id, config, architectures[0])


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers logs a multi-line load report; what matters in it is raised here as one line instead."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def _check_loading_info(model_id: str, config, model, info: dict) -> None:
    """Refuse a model any of whose parameters from_pretrained initialised instead of loading."""
    mismatched = sorted(info.get("mismatched_keys") or [])
    if mismatched:
        key, in_checkpoint, in_model = mismatched[0]
        raise In9Error(
            f"model={model_id}: the checkpoint's {key} has shape {tuple(in_checkpoint)} but its config.json "
            f"({config.num_labels} labels in id2label) builds {tuple(in_model)}, which transformers would "
            "initialise at random; make config.json's id2label list the head's labels"
        )
    missing = sorted(info.get("missing_keys") or [])
    if not missing:
        return
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    head = [key for key in missing if prefix == "." or not key.startswith(prefix)]
    if head:
        architecture = type(model).__name__
        raise In9Error(
            f"model={model_id}: the checkpoint has no classification-head weights ({', '.join(head[:4])} "
            f"missing), so {architecture} would get a newly initialised, random head: it holds a base model "
            "only. Pass a checkpoint fine-tuned for image classification (or, for a CLIP-like model, score "
            "it zero-shot)"
        )
    raise In9Error(
        f"model={model_id}: {len(missing)} weights are missing from the checkpoint (first: {missing[0]}) and "
        "would be initialised at random; the checkpoint is incomplete or of another architecture than its "
        "config.json says"
    )


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
    check_has_head(model_id, config)
    check_weights(folder, model_id, allow_pickle)
    try:
        with _quiet_transformers():
            model, info = AutoModelForImageClassification.from_pretrained(
                folder,
                trust_remote_code=trust_remote_code,
                use_safetensors=None if allow_pickle else True,
                ignore_mismatched_sizes=True,  # mismatches are reported below, as one line, and refused
                output_loading_info=True,
            )
    except (OSError, RuntimeError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise In9Error(
            f"model={model_id}: transformers could not load its weights ({type(exc).__name__}: "
            f"{detail[:300]}{'...' if len(detail) > 300 else ''})"
        ) from None
    _check_loading_info(model_id, config, model, info)
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
