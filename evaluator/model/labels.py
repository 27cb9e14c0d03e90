"""Which head a model has, and how its logits become IN-9 predictions (the paper's 1000 -> 9 mapping).

The head is decided from the model's ``id2label`` (or an explicit label map), never guessed: 1000 ImageNet-1k
names -> ``imagenet-1k``; the 9 IN-9 names in any order and spelling -> ``in9``; ``label_map`` (a JSON
file) -> ``label-map``; anything else is an :class:`In9Error` that says what was found and how to pass a map.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from evaluator.config import LABEL_MODES
from in9_builder.classes import (
    CLASS_NAMES,
    IN1K_TO_IN9,
    NUM_CLASSES,
    class_index,
    imagenet1k_names,
    imagenet1k_wnids,
)
from in9_builder.errors import In9Error

LABEL_MAP_FORMAT = (
    "a JSON object mapping each model label (name or index) to an IN-9 index 0-8 or -1, e.g. "
    '{"golden retriever": 0, "3": 8, "tabby": -1}; labels not listed map to -1'
)


@dataclass(frozen=True, eq=False)
class LabelSpace:
    """A model's label space: ``to_in9[i]`` is the IN-9 class of model label ``i`` (-1 = none)."""

    kind: str  # "imagenet-1k" | "in9" | "label-map"
    to_in9: np.ndarray  # (num_labels,) int64

    @property
    def num_labels(self) -> int:
        return len(self.to_in9)


class Prediction(NamedTuple):
    pred: Tensor  # (N,) int64 in -1..8
    raw_top1: Tensor  # (N,) int64, argmax over the model's own labels
    scores: Tensor | None  # (N, 9) float32: softmax mass on each IN-9 class (None: with_scores=False)


def _fold(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name).strip().lower())


@lru_cache(maxsize=1)
def _imagenet_synonyms() -> tuple[frozenset[str], ...]:
    """Per ImageNet-1k index, every accepted spelling: the full name, each comma synonym, the wnid."""
    out = []
    for name, wnid in zip(imagenet1k_names(), imagenet1k_wnids(), strict=True):
        spellings = {_fold(name), wnid.lower()} | {_fold(part) for part in name.split(",") if part.strip()}
        out.append(frozenset(spellings))
    return tuple(out)


def _normalise_id2label(id2label: Mapping) -> list[str]:
    try:
        items = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError) as exc:
        raise In9Error(
            f"model config id2label has a non-integer key ({exc}); fix the model's config.json"
        ) from None
    if sorted(items) != list(range(len(items))):
        raise In9Error("model config id2label keys are not 0..num_labels-1; fix the model's config.json")
    return [items[i] for i in range(len(items))]


def _found(labels: list[str]) -> str:
    shown = ", ".join(repr(label) for label in labels[:6])
    return f"{len(labels)} labels ({shown}{', ...' if len(labels) > 6 else ''})"


def _unrecognised(labels: list[str], why: str) -> In9Error:
    return In9Error(
        f"cannot map the model's label space to IN-9: found {_found(labels)}; {why}. "
        f"Pass label_map=FILE: {LABEL_MAP_FORMAT}"
    )


def _imagenet_space(labels: list[str]) -> LabelSpace:
    synonyms = _imagenet_synonyms()
    mismatched = [i for i, label in enumerate(labels) if _fold(label) not in synonyms[i]]
    if mismatched:
        i = mismatched[0]
        raise _unrecognised(
            labels,
            f"1000 labels but {len(mismatched)} do not match the ImageNet-1k names "
            f"(first: index {i} is {labels[i]!r}, expected {sorted(synonyms[i])[0]!r})",
        )
    return LabelSpace("imagenet-1k", IN1K_TO_IN9.copy())


def _in9_space(labels: list[str]) -> LabelSpace | None:
    indices = [class_index(label) for label in labels]
    if None in indices or sorted(indices) != list(range(NUM_CLASSES)):
        return None
    return LabelSpace("in9", np.asarray(indices, dtype=np.int64))


def _read_label_map(path: Path, labels: list[str]) -> LabelSpace:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise In9Error(f"label_map={path}: file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise In9Error(f"label_map={path}: not valid JSON ({exc}); expected {LABEL_MAP_FORMAT}") from None
    if not isinstance(raw, dict):
        raise In9Error(f"label_map={path}: expected {LABEL_MAP_FORMAT}")
    by_name: dict[str, int] = {}
    for i, label in enumerate(labels):
        by_name.setdefault(_fold(label), i)
    to_in9 = np.full(len(labels), -1, dtype=np.int64)
    for key, value in raw.items():
        key_s = str(key).strip()
        if key_s.lstrip("-").isdigit():
            index = int(key_s)
            if not 0 <= index < len(labels):
                raise In9Error(f"label_map={path}: key {key!r} is not a label index 0..{len(labels) - 1}")
        elif _fold(key_s) in by_name:
            index = by_name[_fold(key_s)]
        else:
            raise In9Error(
                f"label_map={path}: key {key!r} is neither an index nor a label of the model "
                f"(the model has {_found(labels)})"
            )
        target = class_index(value) if isinstance(value, str) else value
        if isinstance(target, bool) or not isinstance(target, int) or not -1 <= target < NUM_CLASSES:
            raise In9Error(
                f"label_map={path}: value {value!r} for key {key!r} must be an IN-9 index 0-8, "
                f"-1, or one of {', '.join(CLASS_NAMES)}"
            )
        to_in9[index] = target
    if (to_in9 < 0).all():
        raise In9Error(f"label_map={path}: maps no label to an IN-9 class; expected {LABEL_MAP_FORMAT}")
    return LabelSpace("label-map", to_in9)


def resolve_label_space(id2label: Mapping[int, str], label_map: str | Path | None = None) -> LabelSpace:
    """Decide the model's label space from its ``id2label`` (and an optional explicit label map file)."""
    labels = _normalise_id2label(id2label)
    if label_map is not None:
        return _read_label_map(Path(label_map), labels)
    if len(labels) == 1000:
        return _imagenet_space(labels)
    if len(labels) == NUM_CLASSES:
        space = _in9_space(labels)
        if space is None:
            raise _unrecognised(labels, f"9 labels but not the IN-9 classes ({', '.join(CLASS_NAMES)})")
        return space
    raise _unrecognised(labels, "neither the 1000 ImageNet-1k classes nor the 9 IN-9 classes")


def check_label_mode(mode: str) -> str:
    if mode not in LABEL_MODES:
        raise In9Error(f"label_mode={mode!r}: choose one of {', '.join(LABEL_MODES)}")
    return mode


def logits_to_in9(logits: Tensor, space: LabelSpace, mode: str, *, with_scores: bool = True) -> Prediction:
    """Turn (N, num_labels) logits into IN-9 predictions under one of the :data:`LABEL_MODES`.

    ``top1-mapped`` (the paper): argmax over all logits, then map; an unmapped top-1 gives -1 (always wrong).
    ``restricted``: argmax over the mapped logits only. ``superclass-sum``: argmax of the per-class
    sums of the softmax probabilities (those sums are ``scores`` in every mode). ``with_scores=False``
    (the challenge needs only ``pred``) skips the sums unless the mode needs them; ``scores`` is then None.
    """
    check_label_mode(mode)
    if logits.ndim != 2 or logits.shape[1] != space.num_labels:
        raise ValueError(f"logits of shape {tuple(logits.shape)} do not match {space.num_labels} labels")
    logits = logits.float()
    to_in9 = torch.as_tensor(space.to_in9, device=logits.device)
    raw_top1 = logits.argmax(dim=1)
    scores = None
    if with_scores or mode == "superclass-sum":
        # Unmapped labels go to a scratch column 9 that is dropped afterwards.
        bucket = torch.where(to_in9 < 0, NUM_CLASSES, to_in9)
        probs = logits.softmax(dim=1)
        sums = torch.zeros(len(logits), NUM_CLASSES + 1, device=logits.device, dtype=probs.dtype)
        scores = sums.index_add_(1, bucket, probs)[:, :NUM_CLASSES].contiguous()
    if mode == "top1-mapped":
        pred = to_in9[raw_top1]
    elif mode == "restricted":
        masked = logits.masked_fill(to_in9 < 0, float("-inf"))
        pred = to_in9[masked.argmax(dim=1)]
    else:
        pred = scores.argmax(dim=1)
    return Prediction(pred.long(), raw_top1.long(), scores)
