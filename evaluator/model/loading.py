"""Load an image classifier (Hub id, local folder or bare ``nn.Module``) with its preprocessing and labels.

``AutoModelForImageClassification`` + its image processor config, a pinned revision whose commit sha is
recorded, safetensors only unless pickle weights are explicitly allowed, remote code only when trusted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evaluator.model.labels import LabelSpace, resolve_label_space
from evaluator.model.preprocess import BICUBIC, PROTOCOLS, Preprocess, from_image_processor
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


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "0").lower() in (
        "1",
        "true",
        "yes",
    )


def _fetch_hub(model: str, revision: str | None, *, allow_pickle: bool) -> tuple[Path, str]:
    """Download (or find in the cache) a classifier's files; return the snapshot folder and its sha."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    patterns = ["*.json", "*.safetensors", "*.py"] + (["*.bin", "*.pth", "*.pt"] if allow_pickle else [])
    where = f"{model!r}" + (f" at revision {revision!r}" if revision else "")
    try:
        folder = Path(snapshot_download(model, revision=revision, allow_patterns=patterns))
    except HFValidationError:
        raise In9Error(
            f"model={model!r}: not an existing local folder and not a valid Hub model id "
            "(expected 'org/name' or a path)"
        ) from None
    except RevisionNotFoundError:
        raise In9Error(
            f"revision={revision!r}: not found for Hub model {model!r}; pass a branch, tag or "
            "commit sha that exists"
        ) from None
    except GatedRepoError:
        raise In9Error(
            f"model={where}: gated on the Hub; accept its terms and log in (hf auth login)"
        ) from None
    except RepositoryNotFoundError:
        raise In9Error(
            f"model={where}: no such model on the Hub (or it is private: log in with "
            "`hf auth login`); check the id or pass a local folder"
        ) from None
    except LocalEntryNotFoundError:
        state = "offline (HF_HUB_OFFLINE=1)" if _offline() else "the Hub could not be reached"
        raise In9Error(
            f"model={where}: not a local folder and not in the Hub cache, and {state}; download it "
            "first with network access or pass a local folder"
        ) from None
    except OSError as exc:
        raise In9Error(f"model={where}: could not be downloaded ({exc.__class__.__name__}: {exc})") from None
    return folder, folder.name


def _weights_check(folder: Path, model_id: str, allow_pickle: bool) -> None:
    if any(folder.glob("*.safetensors")):
        return
    pickles = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pth", ".pt")]
    if pickles and not allow_pickle:
        raise In9Error(
            f"model={model_id}: only pickle weights ({', '.join(sorted(pickles))}), which can run "
            "arbitrary code when loaded; pass allow_pickle=True if you trust the source"
        )
    if not pickles:
        raise In9Error(f"model={model_id}: no weights found in {folder} (expected model.safetensors)")


def _load_classifier(folder: Path, model_id: str, *, trust_remote_code: bool, allow_pickle: bool):
    from transformers import AutoConfig, AutoModelForImageClassification
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    if not (folder / "config.json").is_file():
        raise In9Error(f"model={model_id}: {folder} has no config.json; is this a transformers model folder?")
    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise In9Error(
                f"model={model_id}: needs custom code from the repository; review it and pass "
                "trust_remote_code=True"
            ) from None
        raise In9Error(f"model={model_id}: unreadable config.json ({exc})") from None
    has_auto_map = "AutoModelForImageClassification" in (getattr(config, "auto_map", None) or {})
    if config.model_type not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES and not has_auto_map:
        archs = ", ".join(getattr(config, "architectures", None) or []) or "none listed"
        raise In9Error(
            f"model={model_id}: not an image classifier (model_type {config.model_type!r}, "
            f"architectures: {archs}); pass a model that AutoModelForImageClassification loads"
        )
    if has_auto_map and not trust_remote_code:
        raise In9Error(
            f"model={model_id}: needs custom code from the repository; review it and pass "
            "trust_remote_code=True"
        )
    _weights_check(folder, model_id, allow_pickle)
    model = AutoModelForImageClassification.from_pretrained(
        folder, trust_remote_code=trust_remote_code, use_safetensors=None if allow_pickle else True
    )
    return config, model.eval()


def _load_processor(folder: Path, model_id: str, protocol: str) -> Preprocess:
    from transformers import AutoImageProcessor

    if not (folder / "preprocessor_config.json").is_file():
        raise In9Error(
            f"model={model_id}: no preprocessor_config.json, so its mean/std are unknown; save the "
            "model's image processor next to it (processor.save_pretrained(folder))"
        )
    processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
    return from_image_processor(processor, protocol)


def load_model(
    model: str,
    revision: str | None = None,
    *,
    protocol: str = "paper",
    label_map: str | Path | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
) -> LoadedModel:
    """Load a Hub model id (at ``revision``) or a local folder as a :class:`LoadedModel`."""
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
        folder, sha = _fetch_hub(model, revision, allow_pickle=allow_pickle)
        source = "hub"
    config, module = _load_classifier(
        folder, model, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle
    )
    space = resolve_label_space(config.id2label, label_map)
    return LoadedModel(
        model=LogitsOnly(module).eval(),
        preprocess=_load_processor(folder, model, protocol),
        label_space=space,
        model_id=model,
        revision=sha,
        num_labels=space.num_labels,
        num_params=sum(p.numel() for p in module.parameters()),
        source=source,
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
