"""Which head a model has, and how its logits become IN-9 predictions (the paper's 1000 -> 9 mapping).

The head is decided from the model's ``id2label`` (or an explicit label map), never guessed. Logit ``i`` is
the label with the ``i``-th smallest id2label key: transformers builds ``len(id2label)`` outputs, and its 22k
conversions delete two ids of a 21,843-label list for 21,841-way heads, so the keys of a gapped head are
positions in that list, not logit indices. Recognised, in this order:

- ``label_map`` (a JSON file) -> ``label-map``, whatever the head;
- the 9 IN-9 names in any order and spelling -> ``in9``;
- the 1000 ImageNet-1k names or wnids in index order -> ``imagenet-1k`` (the paper's table);
- ``background`` then those 1000 (TensorFlow's 1001-way heads) -> ``imagenet-1k+background``;
- every label a WordNet id -> ``wnid`` (``imagenet-21k`` for more than 1001 labels);
- more than 1001 labels naming ImageNet-1k classes -> ``imagenet-21k``.

A wnid or a 21k label maps to the IN-9 class of the ImageNet-1k class it is (the paper's table, exclusions
included); other wnids map through the WordNet noun hierarchy when the packaged table
(``wordnet_in9.tsv``) lists them under one of the nine roots. Anything else is an :class:`In9Error` that
says what was found and how to pass a map.
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
    mapped_wnids,
)
from in9_builder.errors import In9Error

LABEL_MAP_FORMAT = (
    "a JSON object mapping each model label (name or id2label key) to an IN-9 index 0-8 or -1, e.g. "
    '{"golden retriever": 0, "3": 8, "tabby": -1}; labels not listed map to -1'
)
LABEL_SPACE_KINDS = ("imagenet-1k", "imagenet-1k+background", "imagenet-21k", "wnid", "in9", "label-map")
# A 21k/22k head is recognised when its labels identify this share of the 370 ImageNet-1k classes IN-9 maps.
MIN_21K_SHARE = 0.9
_WNID = re.compile(r"n\d{8}")
_BACKGROUND = frozenset({"background", "unused background"})
WORDNET_TABLE = Path(__file__).with_name("wordnet_in9.tsv")


@dataclass(frozen=True, eq=False)
class LabelSpace:
    """A model's label space: ``to_in9[i]`` is the IN-9 class of model logit ``i`` (-1 = none)."""

    kind: str  # one of LABEL_SPACE_KINDS: what was recognised
    to_in9: np.ndarray  # (num_labels,) int64

    @property
    def num_labels(self) -> int:
        return len(self.to_in9)


class Prediction(NamedTuple):
    pred: Tensor  # (N,) int64 in -1..8
    raw_top1: Tensor  # (N,) int64, argmax over the model's own labels
    scores: Tensor | None  # (N, 9) float32: softmax mass on each IN-9 class (None: with_scores=False)


def _fold(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name).strip().lower()).strip()


@lru_cache(maxsize=1)
def _imagenet_synonyms() -> tuple[frozenset[str], ...]:
    """Per ImageNet-1k index, every accepted spelling: the full name, each comma synonym, the wnid."""
    out = []
    for name, wnid in zip(imagenet1k_names(), imagenet1k_wnids(), strict=True):
        spellings = {_fold(name), wnid.lower()} | {_fold(part) for part in name.split(",") if part.strip()}
        out.append(frozenset(spellings))
    return tuple(out)


@lru_cache(maxsize=1)
def _full_name_targets() -> dict[str, int]:
    """Folded full ImageNet-1k name -> IN-9 class (-1 unmapped); a name two classes share with different
    IN-9 classes ('crane': the bird and the machine) is -1."""
    targets: dict[str, set[int]] = {}
    for name, cls in zip(imagenet1k_names(), IN1K_TO_IN9.tolist(), strict=True):
        targets.setdefault(_fold(name), set()).add(int(cls))
    return {name: (next(iter(c)) if len(c) == 1 else -1) for name, c in targets.items()}


@lru_cache(maxsize=1)
def _name_wnids() -> dict[str, set[str]]:
    """Folded full ImageNet-1k name -> the wnids of the classes so named."""
    out: dict[str, set[str]] = {}
    for name, wnid in zip(imagenet1k_names(), imagenet1k_wnids(), strict=True):
        out.setdefault(_fold(name), set()).add(wnid)
    return out


@lru_cache(maxsize=1)
def _wordnet_table() -> tuple[dict[str, int], dict[str, str]]:
    """(wnid -> IN-9 class, folded words -> wnid) for the WordNet nouns under the nine roots, from the
    packaged table (empty if it is absent); words that two of its synsets share are left out."""
    if not WORDNET_TABLE.is_file():
        return {}, {}
    by_wnid: dict[str, int] = {}
    by_words: dict[str, set[str]] = {}
    for line in WORDNET_TABLE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        wnid, cls, words = line.split("\t")
        by_wnid[wnid] = int(cls)
        if words:  # blank where another noun is spelled the same with another class
            by_words.setdefault(_fold(words), set()).add(wnid)
    return by_wnid, {k: next(iter(v)) for k, v in by_words.items() if len(v) == 1}


def wordnet_classes() -> dict[str, int]:
    """wnid -> IN-9 class of every WordNet 3.0 noun under one of the nine roots (the packaged table)."""
    return dict(_wordnet_table()[0])


def _wnid_target(wnid: str) -> int:
    """IN-9 class of a WordNet id: an ImageNet-1k class by the paper's table, else by the hierarchy."""
    wnid = wnid.lower()
    if wnid in _imagenet1k_wnid_set():
        return _mapped_wnids().get(wnid, -1)
    return _wordnet_table()[0].get(wnid, -1)


@lru_cache(maxsize=1)
def _imagenet1k_wnid_set() -> frozenset[str]:
    return frozenset(imagenet1k_wnids())


@lru_cache(maxsize=1)
def _mapped_wnids() -> dict[str, int]:
    return mapped_wnids()


def _labels_by_logit(id2label: Mapping) -> tuple[list[int], list[str]]:
    """(id2label keys, labels), both in key order: logit ``i`` is the ``i``-th key."""
    try:
        items = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError) as exc:
        raise In9Error(
            f"model config id2label has a non-integer key ({exc}); fix the model's config.json"
        ) from None
    if len(items) != len(id2label):
        raise In9Error("model config id2label has the same key twice; fix the model's config.json")
    if items and min(items) < 0:
        raise In9Error(
            f"model config id2label has a negative key ({min(items)}); fix the model's config.json"
        )
    keys = sorted(items)
    return keys, [items[k] for k in keys]


def _found(labels: list[str]) -> str:
    shown = ", ".join(repr(label) for label in labels[:6])
    return f"{len(labels)} labels ({shown}{', ...' if len(labels) > 6 else ''})"


def _unrecognised(labels: list[str], why: str) -> In9Error:
    return In9Error(
        f"cannot map the model's label space to IN-9: found {_found(labels)}; {why}. "
        f"Pass label_map=FILE: {LABEL_MAP_FORMAT}"
    )


def _imagenet_mismatches(labels: list[str]) -> list[int]:
    synonyms = _imagenet_synonyms()
    return [i for i, label in enumerate(labels) if _fold(label) not in synonyms[i]]


def _imagenet_space(labels: list[str], *, background: bool = False) -> LabelSpace:
    head = labels[1:] if background else labels
    mismatched = _imagenet_mismatches(head)
    if mismatched:
        i = mismatched[0]
        what = "1001 labels ('background' first)" if background else "1000 labels"
        raise _unrecognised(
            labels,
            f"{what} but {len(mismatched)} do not match the ImageNet-1k names "
            f"(first: index {i + background} is {head[i]!r}, expected "
            f"{sorted(_imagenet_synonyms()[i])[0]!r})",
        )
    if background:
        return LabelSpace("imagenet-1k+background", np.concatenate([[-1], IN1K_TO_IN9]).astype(np.int64))
    return LabelSpace("imagenet-1k", IN1K_TO_IN9.copy())


def _in9_space(labels: list[str]) -> LabelSpace | None:
    indices = [class_index(label) for label in labels]
    if None in indices or sorted(indices) != list(range(NUM_CLASSES)):
        return None
    return LabelSpace("in9", np.asarray(indices, dtype=np.int64))


def _wnid_space(labels: list[str]) -> LabelSpace:
    to_in9 = np.asarray([_wnid_target(label.strip()) for label in labels], dtype=np.int64)
    if (to_in9 < 0).all():
        raise _unrecognised(
            labels, "WordNet ids, but none is an ImageNet-1k class or a noun under the IN-9 roots"
        )
    present = {label.strip().lower() for label in labels} & _mapped_wnids().keys()
    is_21k = len(labels) > 1001 and len(present) >= MIN_21K_SHARE * len(_mapped_wnids())
    return LabelSpace("imagenet-21k" if is_21k else "wnid", to_in9)


def _imagenet21k_space(labels: list[str]) -> LabelSpace:
    """A 21k/22k head labelled by names (or wnids): each label that is an ImageNet-1k class's full name, a
    wnid, or the words of a noun under an IN-9 root maps there; a name the head uses twice maps nowhere."""
    names = _full_name_targets()
    words = _wordnet_table()[1]
    folded = [_fold(label) for label in labels]
    counts: dict[str, int] = {}
    for name in folded:
        counts[name] = counts.get(name, 0) + 1
    to_in9 = np.full(len(labels), -1, dtype=np.int64)
    found_1k: set[str] = set()
    for i, (label, name) in enumerate(zip(labels, folded, strict=True)):
        if counts[name] > 1:
            continue
        if _WNID.fullmatch(label.strip().lower()):
            to_in9[i] = _wnid_target(label.strip())
            found_1k.add(label.strip().lower())
        elif name in names:
            to_in9[i] = names[name]
            found_1k.update(_name_wnids()[name])
        elif name in words:  # a WordNet noun's words: its wnid decides (an ImageNet-1k one by the paper)
            to_in9[i] = _wnid_target(words[name])
            found_1k.add(words[name])
    identified = len(found_1k & _mapped_wnids().keys())
    if identified < MIN_21K_SHARE * int((IN1K_TO_IN9 >= 0).sum()):
        raise _unrecognised(
            labels,
            f"a head of more than 1001 labels is mapped as ImageNet-21k when its labels name the ImageNet-1k "
            f"classes IN-9 maps (or are wnids), but only {identified} of those "
            f"{int((IN1K_TO_IN9 >= 0).sum())} were found",
        )
    return LabelSpace("imagenet-21k", to_in9)


def _read_label_map(path: Path, keys: list[int], labels: list[str]) -> LabelSpace:
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
    by_key = {key: i for i, key in enumerate(keys)}
    contiguous = keys == list(range(len(keys)))
    to_in9 = np.full(len(labels), -1, dtype=np.int64)
    for key, value in raw.items():
        key_s = str(key).strip()
        if key_s.lstrip("-").isdigit():
            if int(key_s) not in by_key:
                ids = (
                    f"a label index 0..{len(labels) - 1}"
                    if contiguous
                    else f"one of the model's id2label keys ({len(keys)} keys, "
                    f"{keys[0]}..{keys[-1]} with gaps)"
                )
                raise In9Error(f"label_map={path}: key {key!r} is not {ids}")
            index = by_key[int(key_s)]
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
    keys, labels = _labels_by_logit(id2label)
    if label_map is not None:
        return _read_label_map(Path(label_map), keys, labels)
    n = len(labels)
    if n == NUM_CLASSES:
        space = _in9_space(labels)
        if space is None:
            raise _unrecognised(labels, f"9 labels but not the IN-9 classes ({', '.join(CLASS_NAMES)})")
        return space
    if n == 1000:
        if all(_WNID.fullmatch(label.strip().lower()) for label in labels) and _imagenet_mismatches(labels):
            return _wnid_space(labels)  # wnids in another order: each maps by its own identity
        return _imagenet_space(labels)
    if n == 1001 and _fold(labels[0]) in _BACKGROUND:
        return _imagenet_space(labels, background=True)
    if n and all(_WNID.fullmatch(label.strip().lower()) for label in labels):
        return _wnid_space(labels)
    if n > 1001:
        return _imagenet21k_space(labels)
    if n == 1001:
        raise _unrecognised(
            labels,
            f"1001 labels, but label 0 is {labels[0]!r}, not 'background' (then the ImageNet-1k names)",
        )
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
