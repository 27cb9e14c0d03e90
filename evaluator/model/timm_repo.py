"""The ``timm`` kind: a timm repository (``config.json`` with ``architecture``, ``num_classes`` and
``pretrained_cfg``, no ``model_type``; no ``preprocessor_config.json``), run through transformers'
``TimmWrapperForImageClassification``.

Preprocessing is timm's eval transform (``timm.data.resolve_data_config`` + ``create_transform``, not
training: input size, interpolation, ``crop_pct``, ``crop_mode`` center / squash / border, mean/std), resolved
from ``pretrained_cfg`` in one place (:func:`eval_config`) and reproduced on uint8 tensors with torchvision's
own offsets (:class:`TimmPreprocess`), checked against timm's transform at load time; a setting it cannot
reproduce is refused, never approximated. ``paper`` is the model's mean/std at its input size, without resize
or crop when the image already has that size. Labels are ``label_names`` (WordNet ids or names) or, without
them, ImageNet-1k for a 1000-way head, as transformers does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from evaluator.model.hub import check_weights
from evaluator.model.labels import LabelSpace, resolve_label_space
from evaluator.model.preprocess import (
    BICUBIC,
    BILINEAR,
    BOX,
    HAMMING,
    LANCZOS,
    NEAREST,
    Preprocess,
    ResizeSpec,
    resize_uint8,
)
from in9_builder.classes import imagenet1k_wnids
from in9_builder.errors import In9Error

TIMM_INSTALL = 'pip install timm torchvision (or pip install "in9-bench[timm]")'

# timm's interpolation names (timm.data.transforms.str_to_interp_mode) -> PIL resampling codes, which is what
# torchvision's Resize hands a PIL image to.
INTERPOLATIONS = {
    "nearest": NEAREST,
    "bilinear": BILINEAR,
    "bicubic": BICUBIC,
    "box": BOX,
    "hamming": HAMMING,
    "lanczos": LANCZOS,
}
CROP_MODES = ("center", "squash", "border")
DEFAULT_CROP_PCT = 0.875  # timm.data.constants.DEFAULT_CROP_PCT
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


def raw_config(folder: Path) -> dict:
    """config.json as stored (``{}`` when missing or unreadable: the classifier path reports those)."""
    try:
        raw = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def is_timm_repo(raw_config: Mapping) -> bool:
    """A timm checkpoint: what transformers routes to ``TimmWrapperConfig`` (``pretrained_cfg`` without a
    ``model_type``), or a config that transformers saved from one (``model_type`` ``timm_wrapper``)."""
    model_type = raw_config.get("model_type")
    return model_type == "timm_wrapper" or (model_type is None and "pretrained_cfg" in raw_config)


def import_timm(model_id: str, architecture: str):
    """``timm`` itself, or the one-line error that says how to install it (never the ImportError)."""
    try:
        import timm  # the `timm` extra; imports torchvision
    except Exception as exc:  # noqa: BLE001 - a broken torchvision raises RuntimeError, not ImportError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise In9Error(
            f"model={model_id}: a timm model (architecture {architecture!r}), which needs the timm library; "
            f"{TIMM_INSTALL}. `import timm` failed: {type(exc).__name__}: {reason}"
        ) from None
    return timm


@dataclass(frozen=True)
class TimmEval:
    """timm's eval transform for one model, as ``resolve_data_config`` resolves it from ``pretrained_cfg``."""

    input_size: tuple[int, int]  # (h, w)
    interpolation: str
    crop_pct: float
    crop_mode: str  # "center" | "squash" | "border"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def resample(self) -> int:
        return INTERPOLATIONS[self.interpolation]

    @property
    def scale_size(self) -> tuple[int, int]:
        """The resize target before the crop: ``floor(size / crop_pct)`` per side, as timm computes it."""
        return tuple(math.floor(x / self.crop_pct) for x in self.input_size)

    def data_config(self) -> dict:
        """The keyword arguments of ``timm.data.create_transform`` that build this transform."""
        return {
            "input_size": (3, *self.input_size),
            "interpolation": self.interpolation,
            "mean": self.mean,
            "std": self.std,
            "crop_pct": self.crop_pct,
            "crop_mode": self.crop_mode,
        }


def _three(values, name: str, model_id: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        values = ()
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise In9Error(f"model={model_id}: config.json pretrained_cfg.{name} is not 3 numbers (R, G, B)")
    return values


def eval_config(
    pretrained_cfg: Mapping, model_id: str = "model", model_args: Mapping | None = None
) -> TimmEval:
    """The one place ``pretrained_cfg`` becomes preprocessing, with ``timm.data.resolve_data_config``'s
    defaults (bicubic, ImageNet mean/std, crop_pct 0.875, crop_mode center; ``input_size``, not the
    ``test_input_size`` that timm only uses when asked to). As timm reads a Hub config, ``model_args``
    ``img_size`` replaces the input size of a fixed-size model (the model is built at that size)."""
    if not isinstance(pretrained_cfg, Mapping):
        raise In9Error(f"model={model_id}: config.json pretrained_cfg is not an object")
    size = pretrained_cfg.get("input_size") or (3, 224, 224)
    img_size = (model_args or {}).get("img_size")
    if (
        img_size is not None
        and pretrained_cfg.get("fixed_input_size", False)
        and isinstance(size, (list, tuple))
    ):
        size = (size[0], *((img_size, img_size) if isinstance(img_size, int) else img_size))
    if not isinstance(size, (list, tuple)) or len(size) != 3 or not all(isinstance(s, int) for s in size):
        raise In9Error(
            f"model={model_id}: config.json pretrained_cfg.input_size={size!r}: expected [3, H, W]"
        )
    if size[0] != 3:
        raise In9Error(
            f"model={model_id}: pretrained_cfg.input_size={list(size)}: the model takes {size[0]} channels; "
            "IN-9 images are RGB"
        )
    interpolation = pretrained_cfg.get("interpolation") or "bicubic"
    if interpolation not in INTERPOLATIONS:
        raise In9Error(
            f"model={model_id}: pretrained_cfg.interpolation={interpolation!r} is not one the evaluator "
            f"reproduces ({', '.join(INTERPOLATIONS)})"
        )
    crop_mode = pretrained_cfg.get("crop_mode") or "center"
    if crop_mode not in CROP_MODES:
        raise In9Error(
            f"model={model_id}: pretrained_cfg.crop_mode={crop_mode!r} is not one the evaluator reproduces "
            f"({', '.join(CROP_MODES)}); use protocol='paper'"
        )
    crop_pct = pretrained_cfg.get("crop_pct") or DEFAULT_CROP_PCT
    if not isinstance(crop_pct, (int, float)) or isinstance(crop_pct, bool) or crop_pct <= 0:
        raise In9Error(f"model={model_id}: pretrained_cfg.crop_pct={crop_pct!r}: expected a positive number")
    return TimmEval(
        input_size=(size[1], size[2]),
        interpolation=interpolation,
        crop_pct=float(crop_pct),
        crop_mode=crop_mode,
        mean=_three(pretrained_cfg.get("mean") or IMAGENET_DEFAULT_MEAN, "mean", model_id),
        std=_three(pretrained_cfg.get("std") or IMAGENET_DEFAULT_STD, "std", model_id),
    )


def _pad(images: Tensor, left: int, top: int, right: int, bottom: int, fill: tuple[int, int, int]) -> Tensor:
    if not (left or top or right or bottom):
        return images
    n, c, h, w = images.shape
    out = images.new_empty((n, c, h + top + bottom, w + left + right))
    out.copy_(torch.tensor(fill, dtype=images.dtype, device=images.device).view(1, c, 1, 1).expand_as(out))
    out[..., top : top + h, left : left + w] = images
    return out


def center_crop_or_pad(
    images: Tensor, size: tuple[int, int], fill: tuple[int, int, int] = (0, 0, 0)
) -> Tensor:
    """torchvision's ``CenterCrop`` (``fill`` 0) and timm's ``CenterCropOrPad``: pad the short sides with the
    smaller half first, then crop at ``int(round((H - h) / 2))`` (Python's round, halves to even)."""
    crop_h, crop_w = size
    in_h, in_w = images.shape[-2:]
    if crop_w > in_w or crop_h > in_h:
        pad_w, pad_h = max(crop_w - in_w, 0), max(crop_h - in_h, 0)
        images = _pad(images, pad_w // 2, pad_h // 2, (pad_w + 1) // 2, (pad_h + 1) // 2, fill)
        in_h, in_w = images.shape[-2:]
        if (in_h, in_w) == (crop_h, crop_w):
            return images
    top, left = int(round((in_h - crop_h) / 2.0)), int(round((in_w - crop_w) / 2.0))
    return images[..., top : top + crop_h, left : left + crop_w]


def keep_ratio_size(height: int, width: int, target: tuple[int, int], longest: float) -> tuple[int, int]:
    """timm's ``ResizeKeepRatio.get_params`` without the random parts."""
    ratio_h, ratio_w = height / target[0], width / target[1]
    ratio = max(ratio_h, ratio_w) * longest + min(ratio_h, ratio_w) * (1.0 - longest)
    return round(height / ratio), round(width / ratio)


def _per_image(transform, images: Tensor) -> Tensor:
    """timm's transform on each image of a uint8 (N,3,H,W) batch (PIL, on the CPU), in the batch's layout."""
    from PIL import Image

    pixels = images.permute(0, 2, 3, 1).cpu().numpy()
    out = torch.stack([transform(Image.fromarray(p)) for p in pixels]).to(images.device)
    channels_last = images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous()
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


class TimmPreprocess(Preprocess):
    """timm's eval transform on uint8 (N,3,H,W) batches (``processor``), or the model's mean/std at its
    input size (``paper``); then timm's ToTensor + Normalize as one multiply-add. The resize is
    :func:`resize_uint8` (Pillow's own bytes, its pass order included), so every image shape is exact."""

    def __init__(self, spec: TimmEval, protocol: str = "paper") -> None:
        super().__init__(
            mean=spec.mean,
            std=spec.std,
            input_size=spec.input_size,
            protocol=protocol,
            resample=spec.resample,
        )
        self.spec = spec

    def __repr__(self) -> str:
        spec = self.spec
        return (
            f"TimmPreprocess(protocol={self.protocol!r}, input_size={spec.input_size}, "
            f"interpolation={spec.interpolation!r}, crop_pct={spec.crop_pct}, crop_mode={spec.crop_mode!r}, "
            f"mean={self.mean}, std={self.std})"
        )

    def resize_size(self, height: int, width: int) -> tuple[int, int]:
        """The size timm's Resize / ResizeKeepRatio gives a (height, width) image, before the crop."""
        spec = self.spec
        scale = spec.scale_size
        if spec.crop_mode == "squash":  # Resize((h, w))
            return scale
        if spec.crop_mode == "border":  # ResizeKeepRatio(longest=1)
            return keep_ratio_size(height, width, scale, longest=1.0)
        if scale[0] == scale[1]:  # Resize(int): the shortest edge, as torchvision computes it
            return ResizeSpec(shortest_edge=scale[0]).output_size(height, width)
        return keep_ratio_size(height, width, scale, longest=0.0)  # ResizeKeepRatio(scale_size)

    def geometry(self, images: Tensor) -> Tensor:
        if self.protocol == "paper":
            return super().geometry(images)
        spec = self.spec
        images = resize_uint8(images, self.resize_size(*images.shape[-2:]), spec.resample)
        # squash and center: torchvision's CenterCrop; border: timm's CenterCropOrPad with the mean as fill
        fill = tuple(round(255 * m) for m in spec.mean) if spec.crop_mode == "border" else (0, 0, 0)
        return center_crop_or_pad(images, spec.input_size, fill)


class TimmTransformPreprocess(Preprocess):
    """timm's own eval transform, image by image on the CPU (PIL): the fallback when the tensor path does not
    reproduce it (checked at load time by :func:`checked_preprocess`)."""

    def __init__(self, spec: TimmEval, transform) -> None:
        super().__init__(mean=spec.mean, std=spec.std, input_size=spec.input_size, protocol="processor")
        self.spec, self.transform = spec, transform

    def __repr__(self) -> str:
        return f"TimmTransformPreprocess({self.spec})"

    def __call__(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a uint8 (N,3,H,W) batch, got shape {tuple(images.shape)}")
        return _per_image(self.transform, images)


# Load-time probes: IN-9's 224 x 224 and shapes where timm's offsets, rounding and padding matter.
_PROBE_SHAPES = ((224, 224), (181, 256), (256, 139))


def timm_transform(spec: TimmEval, timm):
    """timm's own eval transform for ``spec`` (what ``TimmWrapperImageProcessor`` and a model card build)."""
    return timm.data.create_transform(**spec.data_config(), is_training=False)


def checked_preprocess(spec: TimmEval, protocol: str, timm) -> tuple[Preprocess, str]:
    """The tensor path, checked against timm's own eval transform on probe images (``processor``); where
    they differ by more than float rounding, timm's transform image by image. Returns (preprocess, path)."""
    if protocol != "processor":
        return TimmPreprocess(spec, protocol), "tensor"
    transform = timm_transform(spec, timm)
    tensor = TimmPreprocess(spec, protocol)
    generator = torch.Generator().manual_seed(0)
    for height, width in _PROBE_SHAPES:
        image = torch.randint(0, 256, (1, 3, height, width), dtype=torch.uint8, generator=generator)
        expected = _per_image(transform, image)
        got = tensor(image)
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5, rtol=0):
            return TimmTransformPreprocess(spec, transform), "timm transform per image"
    return tensor, "tensor"


def _imagenet_subset_wnids(raw: Mapping, num_classes: int, model_id: str) -> list[str] | None:
    """The WordNet ids timm itself gives a head without names (``infer_imagenet_subset``: ImageNet-1k, -12k,
    -22k, -21k-goog by class count), or None when timm knows no such subset."""
    timm = import_timm(model_id, str(raw.get("architecture")))
    subset = timm.data.infer_imagenet_subset(
        {**(raw.get("pretrained_cfg") or {}), "num_classes": num_classes}
    )
    return list(timm.data.ImageNetInfo(subset).label_names()) if subset else None


def _label_names(raw: Mapping, num_classes: int, model_id: str) -> dict[int, str]:
    names = raw.get("label_names")
    if names is None:
        if num_classes == 1000:  # transformers: timm's ImageNet-1k info for a 1000-way head without names
            return dict(enumerate(imagenet1k_wnids()))
        wnids = _imagenet_subset_wnids(raw, num_classes, model_id)
        if wnids is not None and len(wnids) == num_classes:  # timm's own 12k/22k synset lists
            return dict(enumerate(wnids))
        return {i: f"LABEL_{i}" for i in range(num_classes)}
    if isinstance(names, Mapping):
        try:
            id2label = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise In9Error(f"model={model_id}: config.json label_names has a non-integer key") from None
    elif isinstance(names, (list, tuple)):
        id2label = {i: str(v) for i, v in enumerate(names)}
    else:
        raise In9Error(f"model={model_id}: config.json label_names is neither a list nor an object")
    if len(id2label) != num_classes:
        raise In9Error(
            f"model={model_id}: config.json has {len(id2label)} label_names for num_classes={num_classes}"
        )
    return id2label


def load_timm_module(folder: Path, model_id: str, architecture: str, num_classes: int, *, allow_pickle: bool):
    timm = import_timm(model_id, architecture)
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    check_weights(folder, model_id, allow_pickle)
    config = TimmWrapperConfig.from_pretrained(folder)
    # timm >= 1.0.31 exports record the head in model_args too (num_classes), which transformers passes to
    # timm.create_model next to its own num_classes (a TypeError): the head is num_classes, checked equal.
    model_args = dict(config.model_args or {})
    if model_args.pop("num_classes", num_classes) != num_classes:
        raise In9Error(
            f"model={model_id}: config.json model_args.num_classes differs from num_classes={num_classes}"
        )
    config.model_args = model_args or None
    try:
        model, info = TimmWrapperForImageClassification.from_pretrained(
            folder, config=config, use_safetensors=None if allow_pickle else True, output_loading_info=True
        )
    except ImportError:  # transformers' "not supported in your version of timm"
        raise In9Error(
            f"model={model_id}: architecture {architecture!r} is not in timm {timm.__version__}; "
            "upgrade it (pip install -U timm)"
        ) from None
    problems = [(k, info.get(k)) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")]
    if any(keys for _, keys in problems):
        detail = "; ".join(
            f"{k.replace('_', ' ')}: {', '.join(sorted(map(str, keys))[:3])}" for k, keys in problems if keys
        )
        raise In9Error(
            f"model={model_id}: the weights do not fit timm architecture {architecture!r} with "
            f"model_args={model.config.model_args} ({detail}); is model.safetensors from this config.json?"
        )
    if model.config.num_labels != num_classes:
        raise In9Error(
            f"model={model_id}: head has {model.config.num_labels} outputs, num_classes={num_classes}"
        )
    return model.eval(), timm


def load_timm(
    folder: Path,
    model_id: str,
    raw_config: Mapping,
    *,
    protocol: str,
    label_map=None,
    allow_pickle: bool = False,
    **_ignored,
) -> tuple[torch.nn.Module, Preprocess, LabelSpace, dict]:
    """(module, preprocessing, label space, extra results.json model fields) of a timm repository."""
    architecture = raw_config.get("architecture")
    if not isinstance(architecture, str) or not architecture:
        raise In9Error(
            f"model={model_id}: config.json has a pretrained_cfg (a timm model) but no architecture; "
            'add the timm model name, e.g. "architecture": "resnet50"'
        )
    num_classes = raw_config.get("num_classes", raw_config.get("num_labels"))
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes <= 0:
        raise In9Error(
            f"model={model_id}: timm model {architecture!r} has num_classes={num_classes!r}: a feature "
            "backbone without a classifier head, which IN-9 cannot score"
        )
    model_args = raw_config.get("model_args")
    spec = eval_config(
        raw_config.get("pretrained_cfg") or {},
        model_id,
        model_args if isinstance(model_args, Mapping) else None,
    )
    space = resolve_label_space(_label_names(raw_config, num_classes, model_id), label_map)
    module, timm = load_timm_module(folder, model_id, architecture, num_classes, allow_pickle=allow_pickle)
    preprocess, path = checked_preprocess(spec, protocol, timm)
    record = {
        "kind": "timm",
        "architecture": architecture,
        "timm_version": timm.__version__,
        "preprocessing": {"path": path, "pretrained_cfg": asdict(spec)},
    }
    return module, preprocess, space, record
