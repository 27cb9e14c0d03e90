"""The two preprocessing protocols, batched on uint8 tensors on whatever device they live on.

``paper``: no resize when the image already has the model's input size (IN-9 is 224), a resize only when the
model needs another size, then the model's own mean/std: equal to the original code's ToTensor + normalise.
``processor``: the model's image processor as configured (e.g. resize 256 + centre crop 224). Resizing
re-implements Pillow's separable resampling in integer fixed point, so the output equals the PIL image
processor's to float rounding while running batched on the device (byte-exact whenever both sides scale the
same way, which is what image processors do; Pillow 13 may order its two passes differently when one side
grows and the other shrinks, giving +-1 differences there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from evaluator.config import PREPROCESS_PROTOCOLS as PROTOCOLS
from in9_builder.errors import In9Error

# PIL resample codes (PIL.Image.Resampling) -> (filter, support).
NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING = 0, 1, 2, 3, 4, 5
_PRECISION_BITS = 32 - 8 - 2  # Pillow's Resample.c


def _bicubic(x: float) -> float:
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _bilinear(x: float) -> float:
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _box(x: float) -> float:
    return 1.0 if -0.5 < x <= 0.5 else 0.0


# Pillow writes these constants as C floats (0.54f, 0.46f).
_F054, _F046 = float(np.float32(0.54)), float(np.float32(0.46))


def _hamming(x: float) -> float:
    x = abs(x)
    if x == 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    x = x * math.pi
    return math.sin(x) / x * (_F054 + _F046 * math.cos(x))


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    return _sinc(x) * _sinc(x / 3.0) if -3.0 <= x < 3.0 else 0.0


_FILTERS = {
    BICUBIC: (_bicubic, 2.0),
    BILINEAR: (_bilinear, 1.0),
    BOX: (_box, 0.5),
    HAMMING: (_hamming, 1.0),
    LANCZOS: (_lanczos, 3.0),
}


@lru_cache(maxsize=64)
def _resample_matrix(in_size: int, out_size: int, resample: int) -> Tensor:
    """(out, in) fixed-point weights exactly as Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc``."""
    weights = torch.zeros(out_size, in_size, dtype=torch.float64)
    scale = in_size / out_size
    if resample == NEAREST:
        for xx in range(out_size):
            weights[xx, min(int((xx + 0.5) * scale), in_size - 1)] = 1 << _PRECISION_BITS
        return weights
    filt, support = _FILTERS[resample]
    filterscale = max(scale, 1.0)
    support = support * filterscale
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        inv = 1.0 / filterscale
        row = [filt((x - center + 0.5) * inv) for x in range(xmin, xmax)]
        total = sum(row)
        for x, w in zip(range(xmin, xmax), row, strict=True):
            w = w / total if total != 0.0 else w
            weights[xx, x] = (
                math.floor(0.5 + w * (1 << _PRECISION_BITS))
                if w >= 0
                else -math.floor(0.5 - w * (1 << _PRECISION_BITS))
            )
    return weights


def _round_pass(acc: Tensor) -> Tensor:
    # Pillow: (sum + 2^(P-1)) >> P, clipped to 0..255. float64 holds these integer sums exactly.
    return torch.floor((acc + (1 << (_PRECISION_BITS - 1))) / (1 << _PRECISION_BITS)).clamp_(0, 255)


def resize_uint8(images: Tensor, size: tuple[int, int], resample: int = BICUBIC) -> Tensor:
    """Resize a uint8 (N,C,H,W) batch to ``size`` (h, w) as ``PIL.Image.resize`` does, on its device."""
    height, width = size
    if resample not in _FILTERS and resample != NEAREST:
        raise In9Error(f"image processor resample={resample} is not a PIL resampling filter (0-5)")
    x = images.to(torch.float64)
    if x.shape[-1] != width:  # horizontal pass first, as Pillow does
        w = _resample_matrix(x.shape[-1], width, resample).to(x.device)
        x = _round_pass(x @ w.T)
    if x.shape[-2] != height:
        w = _resample_matrix(x.shape[-2], height, resample).to(x.device)
        x = _round_pass(w @ x)
    return x.to(torch.uint8)


def center_crop(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Centre crop with transformers' offsets ((H - h) // 2), zero-padding when the image is smaller."""
    height, width = size
    in_h, in_w = images.shape[-2:]
    if in_h < height or in_w < width:
        pad_h, pad_w = max(height - in_h, 0), max(width - in_w, 0)
        top, left = math.ceil(pad_h / 2), math.ceil(pad_w / 2)
        images = torch.nn.functional.pad(images, (left, pad_w - left, top, pad_h - top))
        in_h, in_w = images.shape[-2:]
    top, left = (in_h - height) // 2, (in_w - width) // 2
    return images[..., top : top + height, left : left + width]


@dataclass(frozen=True)
class ResizeSpec:
    """How the processor resizes: to an exact (h, w), or its shortest edge to ``shortest_edge``."""

    exact: tuple[int, int] | None = None
    shortest_edge: int | None = None

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.exact is not None:
            return self.exact
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)


class Preprocess:
    """uint8 (N,3,H,W) -> float32 normalised (N,3,h,w); pure torch, on the batch's device."""

    def __init__(
        self,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        input_size: tuple[int, int] = (224, 224),
        protocol: str = "paper",
        resample: int = BICUBIC,
        resize: ResizeSpec | None = None,
        crop: tuple[int, int] | None = None,
        rescale_factor: float = 1 / 255,
        normalize: bool = True,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise In9Error(f"protocol={protocol!r}: choose one of {', '.join(PROTOCOLS)}")
        self.protocol = protocol
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.input_size = tuple(input_size)
        self.resample = int(resample)
        self.resize = resize
        self.crop = tuple(crop) if crop else None
        self.rescale_factor = float(rescale_factor)
        self.normalize = normalize
        self._cached: tuple | None = None  # (device, size, memory format), scale, shift

    def __repr__(self) -> str:
        return (
            f"Preprocess(protocol={self.protocol!r}, input_size={self.input_size}, resize={self.resize}, "
            f"crop={self.crop}, resample={self.resample}, mean={self.mean}, std={self.std})"
        )

    def geometry(self, images: Tensor) -> Tensor:
        """The uint8 resize / crop part of the protocol."""
        height, width = images.shape[-2:]
        if self.protocol == "paper":
            if (height, width) != self.input_size:
                images = resize_uint8(images, self.input_size, self.resample)
            return images
        if self.resize is not None:
            images = resize_uint8(images, self.resize.output_size(height, width), self.resample)
        if self.crop is not None:
            images = center_crop(images, self.crop)
        return images

    def _affine(self, like: Tensor) -> tuple[Tensor, Tensor]:
        # (x * rescale - mean) / std == x * (rescale / std) + (-mean / std): one in-place multiply-add.
        # The factors are full (1,3,H,W) maps in the batch's memory format: broadcasting a 3-vector over
        # the innermost (channels-last) dimension does not vectorise; same bytes.
        fmt = (
            torch.channels_last
            if like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous()
            else torch.contiguous_format
        )
        key = (like.device, tuple(like.shape[-2:]), fmt)
        if self._cached is None or self._cached[0] != key:
            mean, std = (
                torch.tensor(self.mean, dtype=torch.float64),
                torch.tensor(self.std, dtype=torch.float64),
            )
            if not self.normalize:
                mean, std = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
            full = (1, 3, *like.shape[-2:])
            scale, shift = (
                v.to(torch.float32).view(1, -1, 1, 1).expand(full).to(like.device)
                for v in (self.rescale_factor / std, -mean / std)
            )
            scale, shift = scale.contiguous(memory_format=fmt), shift.contiguous(memory_format=fmt)
            self._cached = (key, scale, shift)
        return self._cached[1], self._cached[2]

    def __call__(self, images: Tensor) -> Tensor:
        """Keeps the memory format of ``images`` (channels-last in, channels-last out)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a uint8 (N,3,H,W) batch, got shape {tuple(images.shape)}")
        x = self.geometry(images).to(torch.float32)
        scale, shift = self._affine(x)
        return x.mul_(scale).add_(shift)


def _size_dict(size) -> dict:
    if size is None:
        return {}
    if isinstance(size, int):
        return {"height": size, "width": size}
    if hasattr(size, "items"):
        return {k: v for k, v in size.items() if v is not None}
    return {
        k: getattr(size, k)
        for k in ("height", "width", "shortest_edge", "longest_edge")
        if getattr(size, k, None) is not None
    }


def from_image_processor(processor, protocol: str = "paper") -> Preprocess:
    """Build a :class:`Preprocess` from a transformers image processor (its config, not its code path)."""
    from transformers.image_processing_backends import PilBackend

    name = type(processor).__name__
    size = _size_dict(getattr(processor, "size", None))
    crop = _size_dict(getattr(processor, "crop_size", None))
    do_resize = bool(getattr(processor, "do_resize", False))
    do_crop = bool(getattr(processor, "do_center_crop", False))
    mean = getattr(processor, "image_mean", None)
    std = getattr(processor, "image_std", None)
    if not getattr(processor, "do_normalize", True) or mean is None or std is None:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    if isinstance(mean, (int, float)):
        mean, std = (mean,) * 3, (std,) * 3
    resample = getattr(processor, "resample", BICUBIC)
    resample = BICUBIC if resample is None else int(resample)
    rescale = (
        float(getattr(processor, "rescale_factor", 1 / 255))
        if getattr(processor, "do_rescale", True)
        else 1.0
    )

    resize_spec: ResizeSpec | None = None
    crop_hw: tuple[int, int] | None = (
        (crop["height"], crop["width"]) if do_crop and "height" in crop else None
    )
    if do_resize:
        if name.startswith("ConvNextImageProcessor"):
            edge = size["shortest_edge"]
            if edge < 384:  # ConvNeXT: resize the short side to edge / crop_pct, then crop edge x edge
                resize_spec = ResizeSpec(shortest_edge=int(edge / processor.crop_pct))
                crop_hw = (edge, edge)
            else:
                resize_spec = ResizeSpec(exact=(edge, edge))
        elif "height" in size and "width" in size:
            resize_spec = ResizeSpec(exact=(size["height"], size["width"]))
        elif "shortest_edge" in size and "longest_edge" not in size:
            resize_spec = ResizeSpec(shortest_edge=size["shortest_edge"])
        elif protocol == "processor":
            raise In9Error(
                f"protocol='processor': {name} resizes with size={size}, which the evaluator does not "
                "reproduce; use protocol='paper'"
            )
    custom_steps = type(processor)._preprocess not in (PilBackend._preprocess,) and not name.startswith(
        "ConvNext"
    )
    if protocol == "processor" and (custom_steps or getattr(processor, "do_pad", False)):
        raise In9Error(
            f"protocol='processor': {name} has its own preprocessing steps that the evaluator does not "
            "reproduce on tensors; use protocol='paper'"
        )

    # The model's input size: the crop if it crops, else the resize target.
    if crop_hw is not None:
        input_size = crop_hw
    elif resize_spec is not None and resize_spec.exact is not None:
        input_size = resize_spec.exact
    elif resize_spec is not None:
        input_size = (resize_spec.shortest_edge, resize_spec.shortest_edge)
    else:
        input_size = (224, 224)
    return Preprocess(
        mean=mean,
        std=std,
        input_size=input_size,
        protocol=protocol,
        resample=resample,
        resize=resize_spec,
        crop=crop_hw,
        rescale_factor=rescale,
    )
