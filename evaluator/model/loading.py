"""Load an image classifier (Hub id, local folder or bare ``nn.Module``) with its preprocessing and labels.

``AutoModelForImageClassification`` + its image processor config, a pinned revision whose commit sha is
recorded, safetensors only unless pickle weights are explicitly allowed, remote code only when trusted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from evaluator.model import classifier, timm_repo, zero_shot
from evaluator.model.hub import fetch_hub, list_folder
from evaluator.model.labels import LabelSpace, resolve_label_space
from evaluator.model.preprocess import BICUBIC, PROTOCOLS, Preprocess
from in9_builder.errors import In9Error

LOCAL_REVISION = None  # recorded for local folders: there is no commit to pin


@dataclass
class LoadedModel:
    model: torch.nn.Module  # eval mode; model(pixel_values) -> logits Tensor (N, num_labels)
    preprocess: Preprocess
    label_space: LabelSpace
    model_id: str
    revision: str | None  # the resolved Hub commit sha; None for a local folder or an in-memory module
    num_labels: int
    num_params: int
    source: str = "hub"  # "hub" | "local" | "module"
    # Extra fields of the results.json "model" block that the model's kind records (how it was preprocessed).
    record: dict = field(default_factory=dict)

    def identity(self) -> dict:
        """What makes this model's predictions: id (Hub models), revision, the weights themselves, the
        preprocessing and the label mapping. The prediction cache and the challenge state are keyed on it."""
        return {
            "model": self.model_id if self.source == "hub" else None,
            "revision": self.revision,
            "weights": weights_digest(self.model),
            "preprocess": repr(self.preprocess),
            "to_in9": hashlib.sha256(
                np.asarray(self.label_space.to_in9, dtype=np.int64).tobytes()
            ).hexdigest(),
        }


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 of the state dict (names, shapes, dtypes, bytes): the weights whatever their origin."""
    sha = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        sha.update(f"{name}|{tuple(tensor.shape)}|{t.dtype}".encode())
        sha.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return sha.hexdigest()


class LogitsOnly(torch.nn.Module):
    """Make ``model(pixel_values)`` return the logits tensor whatever the wrapped model returns."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values)
        if isinstance(out, torch.Tensor):
            return out
        if hasattr(out, "logits"):
            return out.logits
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            return out[0]
        raise TypeError(f"the model returned {type(out).__name__}, expected logits (a Tensor or .logits)")


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _read_config(folder: Path, model_id: str, trust_remote_code: bool):
    from transformers import AutoConfig

    if not (folder / "config.json").is_file():
        raise In9Error(
            f"model={model_id}: no config.json (found {list_folder(folder)}); pass a transformers model "
            "repository or folder (config.json + weights)"
        )
    try:
        return AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise In9Error(
                f"model={model_id}: needs custom code from the repository; review it and pass "
                "trust_remote_code=True"
            ) from None
        raise In9Error(f"model={model_id}: unreadable config.json ({_one_line(exc)})") from None
    except OSError as exc:
        raise In9Error(f"model={model_id}: unreadable config.json ({_one_line(exc)})") from None


def _not_an_image_classifier(model_id: str, config) -> In9Error:
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and classifier.is_headless_vision_model(config, architectures[0]):
        return classifier.headless_error(model_id, config, architectures[0])
    what = f": {classifier.describe_architecture(architectures[0])}" if architectures else ""
    return In9Error(
        f"model={model_id}: not an image classifier (model_type {config.model_type!r}, "
        f"architectures: {', '.join(architectures) or 'none listed'}{what}); pass a checkpoint fine-tuned "
        "for image classification (one that AutoModelForImageClassification loads)"
    )


def _prompts_need_zero_shot(prompts, model_id: str) -> In9Error:
    return In9Error(
        f"prompts={prompts}: model={model_id} is not a zero-shot model (CLIP, SigLIP, ...); prompts apply "
        "only to those"
    )


def _load_kind(
    folder: Path,
    model_id: str,
    *,
    protocol: str,
    label_map,
    trust_remote_code: bool,
    allow_pickle: bool,
    zero_shot_options: dict | None = None,
):
    """Dispatch on what the checkpoint is; each kind returns (module, preprocessing, label space, record).

    Order: timm (read from the raw config.json, before AutoConfig, which raises ImportError for a timm config
    without timm), zero-shot (CLIP and SigLIP types are also in the image-classification mapping), classifier.
    """
    zero_shot_options = zero_shot_options or {}
    prompts = zero_shot_options.get("prompts")
    raw = timm_repo.raw_config(folder)
    if timm_repo.is_timm_repo(raw):
        if prompts is not None:
            raise _prompts_need_zero_shot(prompts, model_id)
        return timm_repo.load_timm(
            folder, model_id, raw, protocol=protocol, label_map=label_map, allow_pickle=allow_pickle
        )
    config = _read_config(folder, model_id, trust_remote_code)
    options = dict(
        protocol=protocol, label_map=label_map, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle
    )
    if zero_shot.is_zero_shot(config):
        return zero_shot.load_zero_shot(folder, model_id, config, **options, **zero_shot_options)
    if prompts is not None:
        raise _prompts_need_zero_shot(prompts, model_id)
    if classifier.is_classifier(config):
        return classifier.load_classifier(folder, model_id, config, **options)
    raise _not_an_image_classifier(model_id, config)


def load_model(
    model: str,
    revision: str | None = None,
    *,
    protocol: str = "paper",
    label_map: str | Path | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    prompts: str | Path | Mapping | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> LoadedModel:
    """Load a Hub model id (at ``revision``) or a local folder as a :class:`LoadedModel`.

    A zero-shot checkpoint (CLIP, SigLIP) is scored through a classifier built from ``prompts``
    (``None``/``"imagenet-1k"``, ``"nine"``, a JSON file; see :mod:`evaluator.model.zero_shot`), cached in
    ``cache_dir/text-classifiers`` (default: the user cache) unless ``use_cache=False``."""
    if protocol not in PROTOCOLS:
        raise In9Error(f"protocol={protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    local = Path(model).expanduser()
    if local.is_dir():
        if revision is not None:
            raise In9Error(f"revision={revision!r}: model={model} is a local folder, which has no revisions")
        folder, sha, source = local, LOCAL_REVISION, "local"
    elif local.exists():
        raise In9Error(f"model={model}: is a file; pass the folder that holds config.json and the weights")
    else:
        folder, sha = fetch_hub(model, revision, allow_pickle=allow_pickle)
        source = "hub"
    module, preprocess, space, record = _load_kind(
        folder,
        model,
        protocol=protocol,
        label_map=label_map,
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
        zero_shot_options=dict(prompts=prompts, cache_dir=cache_dir, use_cache=use_cache),
    )
    return LoadedModel(
        model=LogitsOnly(module).eval(),
        preprocess=preprocess,
        label_space=space,
        model_id=model,
        revision=sha,
        num_labels=space.num_labels,
        num_params=sum(p.numel() for p in module.parameters()),
        source=source,
        record=record,
    )


def wrap_module(
    module: torch.nn.Module,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    id2label: Mapping[int, str] | None = None,
    label_space: LabelSpace | None = None,
    input_size: int | tuple[int, int] = 224,
    protocol: str = "paper",
    model_id: str | None = None,
) -> LoadedModel:
    """Wrap a module mapping a normalised NCHW float batch to logits (paper protocol: its mean/std)."""
    if protocol != "paper":
        raise In9Error(
            f"protocol {protocol!r}: a bare nn.Module has no image processor; use protocol='paper'"
        )
    if (id2label is None) == (label_space is None):
        raise In9Error("wrap_module: give exactly one of id2label= or label_space=")
    space = label_space if label_space is not None else resolve_label_space(id2label)
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(mean) != 3 or len(std) != 3:
        raise In9Error("wrap_module: mean and std must have 3 values (R, G, B)")
    return LoadedModel(
        model=LogitsOnly(module).eval(),
        preprocess=Preprocess(mean=mean, std=std, input_size=size, protocol="paper", resample=BICUBIC),
        label_space=space,
        model_id=model_id or type(module).__name__,
        revision=None,
        num_labels=space.num_labels,
        num_params=sum(p.numel() for p in module.parameters()),
        source="module",
    )
