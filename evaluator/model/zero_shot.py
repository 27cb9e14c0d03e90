"""The ``zero-shot`` kind: a vision-language checkpoint (CLIP, SigLIP, any model that ``AutoModel`` loads with
``get_image_features`` / ``get_text_features``) turned into an image classifier from text prompts.

Every template is filled with every class name; each text embedding is L2-normalised, the embeddings of a
class are averaged over its templates and re-normalised: ``W`` (classes x dim), as CLIP's zero-shot ImageNet
evaluation and LAION CLIP_benchmark build it. The module maps pixel values to
``logit_scale.exp() * normalize(image_features) @ W.T`` (+ ``logit_bias`` where the model has one, SigLIP:
its own ``logits_per_image``; a constant shift, so no prediction or softmax score changes). ``W`` is computed
once per (checkpoint files, prompts, tokenisation) and cached under ``<cache>/text-classifiers/``.

Prompts (``prompts=``): ``None`` / ``"imagenet-1k"`` the 1000 ImageNet-1k class names x the 80 CLIP templates
(``prompts/clip_imagenet1k.json``: LAION CLIP_benchmark's lists, MIT), scored with the paper's 1000 -> 9
mapping; ``"nine"`` the 9 IN-9 names x the same templates; or a JSON file / mapping
``{"classnames": [...], "templates": [...]}`` whose class names are mapped like a head's labels.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from evaluator.config import user_cache_dir
from evaluator.model.classifier import load_processor
from evaluator.model.hub import check_weights
from evaluator.model.labels import LabelSpace, resolve_label_space
from evaluator.model.preprocess import Preprocess
from in9_builder.atomic import atomic_write
from in9_builder.classes import CLASS_NAMES, IN1K_TO_IN9, NUM_CLASSES
from in9_builder.errors import In9Error

PROMPTS_DIR = Path(__file__).with_name("prompts")
DEFAULT_PROMPTS = "imagenet-1k"
NINE = "nine"
PROMPT_CHOICES = (DEFAULT_PROMPTS, NINE)
PROMPTS_FORMAT = (
    'a JSON object {"classnames": ["class name", ...], "templates": ["a photo of a {c}.", ...]}: '
    "every template holds {c} (or {}) where the class name goes"
)
CACHE_FORMAT = "in9-text-classifier/1"
TEXT_BATCH = 256  # prompts per text forward
_FILE_KEYS = {"classnames", "templates", "source", "license"}
_PLACEHOLDERS = ("{c}", "{}")


@dataclass(frozen=True)
class Prompts:
    """The class names and templates a text classifier is built from, and what they were called."""

    classnames: tuple[str, ...]
    templates: tuple[str, ...]
    origin: str  # "imagenet-1k" | "nine" | the file or "<mapping>"

    def record(self) -> dict:
        """The results.json ``model.prompts`` block: exactly what was used."""
        return {"classnames": list(self.classnames), "templates": list(self.templates)}

    def texts(self) -> list[str]:
        """Class-major: ``texts[c * len(templates) + t]`` is template ``t`` filled with class ``c``."""
        return [fill(template, name) for name in self.classnames for template in self.templates]


def fill(template: str, classname: str) -> str:
    """``template`` with its placeholder (``{c}``, CLIP_benchmark's, or ``{}``, OpenAI CLIP's) replaced."""
    placeholder = "{c}" if "{c}" in template else "{}"
    return template.replace(placeholder, classname)


@lru_cache(maxsize=1)
def _packaged() -> dict:
    return json.loads((PROMPTS_DIR / "clip_imagenet1k.json").read_text())


def default_prompts() -> Prompts:
    data = _packaged()
    return Prompts(tuple(data["classnames"]), tuple(data["templates"]), DEFAULT_PROMPTS)


def _string_list(raw, field: str, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise In9Error(
            f"prompts={where}: {field!r} must be a non-empty list of strings; expected {PROMPTS_FORMAT}"
        )
    bad = [value for value in raw if not isinstance(value, str) or not value.strip()]
    if bad:
        raise In9Error(f"prompts={where}: {field!r} holds {bad[0]!r}, not a non-empty string")
    return tuple(raw)  # repeats are allowed: CLIP's own ImageNet names list "missile" and "sunglasses" twice


def _from_mapping(raw, where: str) -> Prompts:
    if not isinstance(raw, Mapping):
        raise In9Error(f"prompts={where}: expected {PROMPTS_FORMAT}")
    unknown = sorted(set(raw) - _FILE_KEYS)
    if unknown:
        raise In9Error(f"prompts={where}: unknown field {unknown[0]!r}; expected {PROMPTS_FORMAT}")
    missing = [key for key in ("classnames", "templates") if key not in raw]
    if missing:
        raise In9Error(f"prompts={where}: no {missing[0]!r} field; expected {PROMPTS_FORMAT}")
    classnames = _string_list(raw["classnames"], "classnames", where)
    templates = _string_list(raw["templates"], "templates", where)
    for template in templates:
        if sum(template.count(p) for p in _PLACEHOLDERS) != 1:
            raise In9Error(
                f"prompts={where}: template {template!r} must hold exactly one {{c}} (or {{}}) where the "
                "class name goes"
            )
    return Prompts(classnames, templates, where)


def resolve_prompts(prompts: str | os.PathLike | Mapping | None) -> Prompts:
    """``None`` / ``"imagenet-1k"``, ``"nine"``, a JSON file or a mapping -> :class:`Prompts`."""
    if prompts is None or prompts == DEFAULT_PROMPTS:
        return default_prompts()
    if prompts == NINE:
        return Prompts(CLASS_NAMES, default_prompts().templates, NINE)
    if isinstance(prompts, Mapping):
        return _from_mapping(prompts, "<mapping>")
    path = Path(prompts).expanduser()
    if not path.is_file():
        raise In9Error(
            f"prompts={prompts}: not {' or '.join(PROMPT_CHOICES)} and no such file; pass one of those or "
            f"a JSON file: {PROMPTS_FORMAT}"
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise In9Error(f"prompts={prompts}: not valid JSON ({exc}); expected {PROMPTS_FORMAT}") from None
    return _from_mapping(raw, str(prompts))


def prompt_label_space(prompts: Prompts, label_map: str | Path | None = None) -> LabelSpace:
    """The label space of a prompt classifier: kind ``zero-shot:<imagenet-1k | in9 | label-map>``."""
    if label_map is None and prompts.classnames == default_prompts().classnames:
        return LabelSpace(f"zero-shot:{DEFAULT_PROMPTS}", IN1K_TO_IN9.copy())
    if label_map is None and prompts.classnames == CLASS_NAMES:
        return LabelSpace("zero-shot:in9", np.arange(NUM_CLASSES, dtype=np.int64))
    try:
        space = resolve_label_space(dict(enumerate(prompts.classnames)), label_map)
    except In9Error as exc:
        if label_map is not None:
            raise
        raise In9Error(f"prompts={prompts.origin}: the class names: {exc}", argument="prompts") from None
    return LabelSpace(f"zero-shot:{space.kind}", space.to_in9)


def is_zero_shot(config) -> bool:
    """A checkpoint of the zero-shot-image-classification task: its architecture (``CLIPModel``,
    ``SiglipModel``, ...) or, with none listed, its model type is in transformers' zero-shot mapping. A
    fine-tuned ``*ForImageClassification`` of those types is a classifier, not this kind."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES

    architectures = list(getattr(config, "architectures", None) or [])
    if any(arch.endswith("ForImageClassification") for arch in architectures):
        return False
    if architectures:
        return bool(set(architectures) & set(MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES.values()))
    return config.model_type in MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES


@dataclass(frozen=True)
class Tokenization:
    """How prompts are tokenised: SigLIP was trained on texts padded to its full length without a mask
    (the transformers pipeline pads it to max_length too); the others pad to the longest text of a batch."""

    max_length: int | None
    pad_to_max_length: bool
    attention_mask: bool

    @classmethod
    def for_model(cls, config, tokenizer) -> Tokenization:
        text_config = getattr(config, "text_config", None)
        max_length = getattr(text_config, "max_position_embeddings", None)
        if max_length is None and getattr(tokenizer, "model_max_length", 0) < 1_000_000:
            max_length = int(tokenizer.model_max_length)
        siglip = "siglip" in config.model_type
        return cls(max_length=max_length, pad_to_max_length=siglip, attention_mask=not siglip)

    def key(self) -> dict:
        return {
            "max_length": self.max_length,
            "padding": "max_length" if self.pad_to_max_length else "longest",
            "attention_mask": self.attention_mask,
        }


def _pooled(out) -> torch.Tensor:
    """The embeddings of ``get_*_features``: a tensor (older code) or ``.pooler_output`` (transformers 5)."""
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    raise TypeError(f"get_*_features returned {type(out).__name__} without a pooler_output tensor")


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def _batches(tokenizer, texts: list[str], tokenization: Tokenization, batch_size: int):
    """(indices, model inputs) per batch; texts grouped by token length so that little padding is computed."""
    truncate = dict(truncation=True, max_length=tokenization.max_length) if tokenization.max_length else {}
    if tokenization.pad_to_max_length:
        order = list(range(len(texts)))
        padding = "max_length"
    else:
        lengths = [len(ids) for ids in tokenizer(texts, **truncate)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
        padding = "longest"
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in chosen], padding=padding, return_tensors="pt", **truncate)
        inputs = {"input_ids": enc["input_ids"]}
        if tokenization.attention_mask and "attention_mask" in enc:
            inputs["attention_mask"] = enc["attention_mask"]
        yield chosen, inputs


def encode_text_classifier(
    model: torch.nn.Module,
    tokenizer,
    prompts: Prompts,
    tokenization: Tokenization,
    *,
    batch_size: int = TEXT_BATCH,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``W`` (classes, dim) float32: per class the mean of its normalised template embeddings, normalised."""
    from tqdm.auto import tqdm

    texts = prompts.texts()
    per_class = len(prompts.templates)
    sums = None
    steps = -(-len(texts) // batch_size)
    with torch.inference_mode():
        batches = _batches(tokenizer, texts, tokenization, batch_size)
        for indices, inputs in tqdm(batches, total=steps, desc="text classifier", disable=None):
            inputs = {k: v.to(device) for k, v in inputs.items()}
            embeddings = _normalize(_pooled(model.get_text_features(**inputs)).float())
            if sums is None:
                sums = torch.zeros(len(prompts.classnames), embeddings.shape[1], device=device)
            classes = torch.as_tensor([i // per_class for i in indices], device=device)
            sums.index_add_(0, classes, embeddings)
    return _normalize(sums / per_class).cpu()


class ZeroShotClassifier(torch.nn.Module):
    """``pixel_values -> scale * normalize(image_features) @ W.T (+ bias)``: logits over the prompt classes.

    ``W`` is a buffer, so the evaluator's weights digest (the prediction cache key) covers the prompts."""

    def __init__(self, model: torch.nn.Module, classifier: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("classifier", classifier.to(torch.float32).contiguous())

    def scale(self) -> torch.Tensor:
        if hasattr(self.model, "logit_scale"):
            return self.model.logit_scale.exp()
        return 1.0 / self.model.temperature  # ALIGN divides the cosine by a learned temperature

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        image = _normalize(_pooled(self.model.get_image_features(pixel_values=pixel_values)))
        logits = self.scale().to(self.classifier.dtype) * (
            image.to(self.classifier.dtype) @ self.classifier.T
        )
        bias = getattr(self.model, "logit_bias", None)
        return logits if bias is None else logits + bias.to(logits.dtype)


# ---------------------------------------------------------------------------------------------- the cache


def checkpoint_digest(folder: Path) -> str:
    """sha256 over the files the text classifier depends on: the weights read, config.json and the tokenizer
    files (every *.json but the image processor's, *.txt, *.model)."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    weights = [p for p in files if p.suffix == ".safetensors"] or [
        p for p in files if p.suffix in (".bin", ".pth", ".pt")
    ]
    text = [
        p for p in files if p.suffix in (".json", ".txt", ".model") and p.name != "preprocessor_config.json"
    ]
    sha = hashlib.sha256()
    for path in sorted(weights + text):
        sha.update(f"{path.name}|{path.stat().st_size}|".encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 24):
                sha.update(chunk)
    return sha.hexdigest()


def text_classifier_root(cache_dir: str | os.PathLike | None) -> Path:
    """``cache_dir/text-classifiers`` or ``user_cache_dir()/text-classifiers``."""
    return (Path(cache_dir) if cache_dir is not None else user_cache_dir()) / "text-classifiers"


def cache_key(folder: Path, prompts: Prompts, tokenization: Tokenization) -> dict:
    return {
        "format": CACHE_FORMAT,
        "checkpoint": checkpoint_digest(folder),
        "tokenization": tokenization.key(),
        **prompts.record(),
    }


def cache_path(root: Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return root / f"{digest[:32]}.safetensors"


def read_cached(path: Path, key: dict, shape: tuple[int, int]) -> torch.Tensor | None:
    """The cached ``W`` if ``path`` holds one of ``shape`` for exactly ``key``; a damaged or foreign file is
    ignored (and later replaced)."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            if json.loads((handle.metadata() or {}).get("key", "null")) != key:
                return None
            classifier = handle.get_tensor("classifier")
    except Exception:  # noqa: BLE001 - safetensors raises its own error types on a damaged file
        return None
    return classifier if tuple(classifier.shape) == tuple(shape) else None


def write_cached(path: Path, key: dict, classifier: torch.Tensor) -> None:
    from safetensors.torch import save_file

    metadata = {"key": json.dumps(key, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file({"classifier": classifier.contiguous()}, str(tmp), metadata))


# ---------------------------------------------------------------------------------------------- the kind


def _text_device() -> torch.device:
    # Encoding tens of thousands of prompts wants the accelerator; under torchrun accelerate has already
    # selected this process's GPU.
    return (
        torch.device("cuda", torch.cuda.current_device())
        if torch.cuda.is_available()
        else torch.device("cpu")
    )


def _load_module(folder: Path, model_id: str, config, *, trust_remote_code: bool, allow_pickle: bool):
    from transformers import AutoModel

    if "AutoModel" in (getattr(config, "auto_map", None) or {}) and not trust_remote_code:
        raise In9Error(
            f"model={model_id}: needs custom code from the repository; review it and pass "
            "trust_remote_code=True"
        )
    check_weights(folder, model_id, allow_pickle)
    model = AutoModel.from_pretrained(
        folder, trust_remote_code=trust_remote_code, use_safetensors=None if allow_pickle else True
    )
    missing = [
        name
        for name in ("get_image_features", "get_text_features")
        if not callable(getattr(model, name, None))
    ]
    if not hasattr(model, "logit_scale") and not hasattr(model, "temperature"):
        missing.append("logit_scale")
    if missing:
        raise In9Error(
            f"model={model_id}: {type(model).__name__} has no {missing[0]}, so the evaluator cannot build a "
            "zero-shot classifier from it; pass a CLIP-style model (image and text features, a logit scale)"
        )
    return model.eval()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _load_tokenizer(folder: Path, model_id: str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except (ImportError, OSError, ValueError, TypeError, RuntimeError) as exc:
        hint = " (SigLIP's needs: pip install sentencepiece)" if "sentencepiece" in str(exc).lower() else ""
        raise In9Error(
            f"model={model_id}: its tokenizer could not be loaded from {folder}{hint} ({_first_line(exc)}); "
            "a zero-shot model needs its tokenizer files (tokenizer.json, vocab + merges, or spiece.model)"
        ) from None


def _image_feature_size(model, preprocess: Preprocess, model_id: str) -> int:
    """One blank image through ``get_image_features`` before any text is encoded: models that need more
    than pixel values (SigLIP 2's patch inputs, BLIP-2's query tokens) are refused here with one line."""
    height, width = preprocess.input_size
    try:
        with torch.inference_mode():
            features = _pooled(model.get_image_features(pixel_values=torch.zeros(1, 3, height, width)))
    except Exception as exc:  # the model's own code: any failure means it is not usable this way
        raise In9Error(
            f"model={model_id}: get_image_features on a (1, 3, {height}, {width}) batch of pixel values "
            f"failed ({_first_line(exc)}); this model needs inputs the evaluator does not give"
        ) from None
    if features.ndim != 2 or features.shape[0] != 1:
        raise In9Error(
            f"model={model_id}: get_image_features gives shape {tuple(features.shape)} per image, not one "
            "embedding; this model's image and text features do not pair as CLIP's do"
        )
    return int(features.shape[1])


def _accepts_attention_mask(model) -> bool:
    return "attention_mask" in inspect.signature(model.get_text_features).parameters


def load_zero_shot(
    folder: Path,
    model_id: str,
    config,
    *,
    protocol: str,
    label_map,
    trust_remote_code: bool,
    allow_pickle: bool,
    prompts: str | os.PathLike | Mapping | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> tuple[torch.nn.Module, Preprocess, LabelSpace, dict]:
    """(module, preprocessing, label space, ``{"prompts": ...}``) of a zero-shot checkpoint."""
    spec = resolve_prompts(prompts)  # a bad prompts file fails before any weights are read
    space = prompt_label_space(spec, label_map)
    model = _load_module(
        folder, model_id, config, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle
    )
    preprocess, preprocessing = load_processor(folder, model_id, protocol)
    dim = _image_feature_size(model, preprocess, model_id)
    tokenizer = _load_tokenizer(folder, model_id, trust_remote_code)
    tokenization = Tokenization.for_model(config, tokenizer)
    if tokenization.attention_mask and not _accepts_attention_mask(model):
        tokenization = Tokenization(tokenization.max_length, tokenization.pad_to_max_length, False)

    shape = (len(spec.classnames), dim)
    key = cache_key(folder, spec, tokenization) if use_cache else None
    path = cache_path(text_classifier_root(cache_dir), key) if use_cache else None
    # Under torchrun the first process encodes and writes W while the others wait, then read it (where the
    # processes do not share the cache folder, each encodes its own). Each process passes one barrier.
    shared = use_cache and torch.distributed.is_available() and torch.distributed.is_initialized()
    first = not shared or torch.distributed.get_rank() == 0
    if not first:
        torch.distributed.barrier()
    classifier = read_cached(path, key, shape) if use_cache else None
    if classifier is None:
        device = _text_device()
        classifier = encode_text_classifier(model.to(device), tokenizer, spec, tokenization, device=device)
        model.to("cpu")
        if tuple(classifier.shape) != shape:
            raise In9Error(
                f"model={model_id}: its text features have {classifier.shape[1]} dimensions and its image "
                f"features {dim}; they do not pair as CLIP's do"
            )
        if use_cache:
            write_cached(path, key, classifier)
    if shared and first:
        torch.distributed.barrier()
    module = ZeroShotClassifier(model, classifier).eval()
    return module, preprocess, space, {"prompts": spec.record(), "preprocessing": preprocessing}
