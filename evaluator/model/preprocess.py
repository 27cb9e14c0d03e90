"""The two preprocessing protocols, batched on uint8 tensors on whatever device they live on.

``processor``: what the model's image processor (PIL backend) does, step by step in its own order: its resize
rule (ConvNeXT's and PoolFormer's ``crop_pct``, LeViT's 256/224, TextNet's size divisor, Perceiver's crop
before resize ...), centre crop, rescale (EfficientNet's ``rescale_offset``), normalisation (EfficientNet's
``include_top`` second division by std), channel flip (MobileViT's ``do_flip_channel_order``) and padding.
``paper``: no resize when the image already has the model's input size (IN-9 is 224), a resize only when the
model needs another size, then the same pixel convention (normalisation, rescale offset, channel order) as
the processor with ``do_resize=False, do_center_crop=False``: equal to the original code's ToTensor +
normalise for ImageNet models.

:func:`from_image_processor` only builds a pipeline for processor classes whose code it knows, method by
method (a subclass that overrides one of those methods is refused with :class:`NotReproducible`); the
evaluator then checks the result against the processor itself at load time
(:mod:`evaluator.model.processor_check`). The uint8 resize is Pillow's own on the CPU and, on an accelerator,
a batched re-implementation of it in its integer fixed point (its pass order included): the same bytes, so
the output equals the PIL image processor's to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import PIL
import torch
from PIL import Image
from torch import Tensor

from evaluator.config import PREPROCESS_PROTOCOLS as PROTOCOLS
from in9_builder.errors import In9Error

# PIL resample codes (PIL.Image.Resampling) -> (filter, support).
NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING = 0, 1, 2, 3, 4, 5
_PRECISION_BITS = 32 - 8 - 2  # Pillow's Resample.c


class NotReproducible(In9Error):
    """The image processor does something the tensor path has no rule for; the caller runs the processor."""


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


def _nearest_index(in_size: int, out_size: int) -> list[int]:
    # Pillow resizes NEAREST with an affine transform (ImagingScaleAffine): a double start at half a step,
    # then one addition per output pixel, truncated. Accumulating, not multiplying, is what makes it exact.
    step = in_size / out_size
    pos, index = step * 0.5, []
    for _ in range(out_size):
        index.append(min(int(pos), in_size - 1))
        pos += step
    return index


@lru_cache(maxsize=64)
def _resample_matrix(in_size: int, out_size: int, resample: int) -> Tensor:
    """(out, in) fixed-point weights exactly as Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc``."""
    weights = torch.zeros(out_size, in_size, dtype=torch.float64)
    scale = in_size / out_size
    if resample == NEAREST:
        for xx, x in enumerate(_nearest_index(in_size, out_size)):
            weights[xx, x] = 1 << _PRECISION_BITS
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


@lru_cache(maxsize=64)
def _taps(in_size: int, out_size: int, resample: int) -> tuple[Tensor, Tensor]:
    """The weights as (K, out) source indices and (K, out) int32 weights: Pillow's kernel window of each
    output pixel (K taps, the shorter windows padded with zero weights)."""
    weights = _resample_matrix(in_size, out_size, resample)
    nonzero = weights != 0
    first = nonzero.to(torch.int8).argmax(dim=1)
    last = in_size - 1 - nonzero.flip(1).to(torch.int8).argmax(dim=1)
    k = int((last - first).max().item()) + 1
    index = (first[None, :] + torch.arange(k)[:, None]).clamp_(max=in_size - 1)
    taps = weights.gather(1, index.T).T
    taps = torch.where(first[None, :] + torch.arange(k)[:, None] <= last[None, :], taps, 0)
    return index, taps.to(torch.int32)


def _pass(x: Tensor, dim: int, out_size: int, resample: int) -> Tensor:
    """One separable pass along ``dim`` (-1 horizontal, -2 vertical) in Pillow's int32 fixed point: the sum
    of K shifted, weighted copies, then (sum + 2^(P-1)) >> P clipped to 0..255: the integers of its C loop."""
    if x.shape[dim] == out_size:
        return x
    index, taps = _taps(x.shape[dim], out_size, resample)
    index, taps = index.to(x.device), taps.to(x.device)
    shape = (-1, 1) if dim == -2 else (-1,)
    acc = torch.full((), 1 << (_PRECISION_BITS - 1), dtype=torch.int32, device=x.device)
    for k in range(index.shape[0]):
        acc = acc + x.index_select(dim, index[k]) * taps[k].view(shape)
    return acc.bitwise_right_shift_(_PRECISION_BITS).clamp_(0, 255)


def resize_uint8(images: Tensor, size: tuple[int, int], resample: int = BICUBIC) -> Tensor:
    """Resize a uint8 (N,C,H,W) batch to ``size`` (h, w) as ``PIL.Image.resize`` does, on its device.

    On the CPU it is Pillow itself, image by image (its SIMD C code is several times faster there than any
    tensor formulation, and it is what the image processors call); on an accelerator
    :func:`resize_uint8_torch`, the same integers batched. The result is channels-last on the CPU.
    """
    height, width = size
    if resample not in _FILTERS and resample != NEAREST:
        raise In9Error(f"image processor resample={resample} is not a PIL resampling filter (0-5)")
    if images.device.type != "cpu":
        return resize_uint8_torch(images, size, resample)
    nhwc = images.permute(0, 2, 3, 1)
    source = np.ascontiguousarray(nhwc.numpy())
    out = np.empty((len(source), height, width, source.shape[-1]), dtype=np.uint8)
    for image, target in zip(source, out, strict=True):
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        target[...] = np.asarray(pil.resize((width, height), resample=resample)).reshape(target.shape)
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def resize_uint8_torch(images: Tensor, size: tuple[int, int], resample: int = BICUBIC) -> Tensor:
    """:func:`resize_uint8` in torch on any device: Pillow's two passes in its int32 fixed point, in its
    order (below), batched; equal to ``PIL.Image.resize`` byte for byte."""
    height, width = size
    if resample not in _FILTERS and resample != NEAREST:
        raise In9Error(f"image processor resample={resample} is not a PIL resampling filter (0-5)")
    x = images.to(torch.int32)
    in_h, in_w = x.shape[-2:]
    passes = [(-1, width), (-2, height)]
    if _VERTICAL_FIRST_RULE and in_h > height and in_h - height > 2 * (in_w - width):
        passes.reverse()
    for dim, out_size in passes:
        x = _pass(x, dim, out_size, resample)
    return x.to(torch.uint8)


# Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height shrinks by more than
# twice as many pixels as the width (measured on 3,708 shapes and all filters: no exception); before, always
# the horizontal pass first. The passes round to uint8 in between, so the order shows in the pixels.
_VERTICAL_FIRST_RULE = int(PIL.__version__.split(".")[0]) >= 13


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
    """How the processor resizes: to an exact (h, w); its shortest edge to ``shortest_edge`` (capped by
    ``longest_edge``, rounded up to a multiple of ``divisor``); or into ``max_size`` (h, w) keeping the
    aspect ratio. The sizes are transformers' own formulas."""

    exact: tuple[int, int] | None = None
    shortest_edge: int | None = None
    longest_edge: int | None = None
    max_size: tuple[int, int] | None = None
    divisor: int | None = None

    def __repr__(self) -> str:
        # The first two fields always (the prediction cache key of existing pipelines), the rest when set.
        extra = "".join(
            f", {name}={getattr(self, name)}"
            for name in ("longest_edge", "max_size", "divisor")
            if getattr(self, name) is not None
        )
        return f"ResizeSpec(exact={self.exact}, shortest_edge={self.shortest_edge}{extra})"

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.exact is not None:
            return self.exact
        if self.max_size is not None:
            from transformers.image_utils import get_image_size_for_max_height_width

            return tuple(get_image_size_for_max_height_width((height, width), *self.max_size))
        if self.longest_edge is not None:
            from transformers.image_transforms import get_size_with_aspect_ratio

            return tuple(get_size_with_aspect_ratio((height, width), self.shortest_edge, self.longest_edge))
        # transformers.image_transforms.get_resize_output_image_size(default_to_square=False)
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        new_h, new_w = (new_long, new_short) if width <= height else (new_short, new_long)
        if self.divisor:  # TextNet: round each side up to a multiple of size_divisor
            new_h += -new_h % self.divisor
            new_w += -new_w % self.divisor
        return new_h, new_w


@dataclass(frozen=True)
class Resize:
    spec: ResizeSpec

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return self.spec.output_size(height, width)


@dataclass(frozen=True)
class CenterCrop:
    size: tuple[int, int]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return self.size


@dataclass(frozen=True)
class RelativeCenterCrop:
    """Perceiver: a centre crop of (size / crop_size) x the image's shorter side, before the resize."""

    size: tuple[int, int]
    crop_size: tuple[int, int]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        min_dim = min(height, width)
        return (
            int((self.size[0] / self.crop_size[0]) * min_dim),
            int((self.size[1] / self.crop_size[1]) * min_dim),
        )


Step = Resize | CenterCrop | RelativeCenterCrop


def _default_steps(resize: ResizeSpec | None, crop: tuple[int, int] | None) -> tuple:
    return ((Resize(resize),) if resize is not None else ()) + ((CenterCrop(crop),) if crop else ())


class Preprocess:
    """uint8 (N,3,H,W) -> float32 normalised (N,3,h,w); pure torch, on the batch's device.

    Per pixel: ``x * rescale_factor`` (``- 1`` with ``rescale_offset``), ``(. - mean) / std``, ``/ std`` again
    with ``include_top``, channels reversed with ``flip_channel_order``: one multiply-add per channel. The
    geometry: ``steps`` (resize / crop, in the processor's order) under ``processor``; under ``paper`` only a
    resize to ``input_size`` when the image has another size. ``pad`` (h, w) zero-pads the bottom and right
    of the normalised image, as the processor's ``do_pad`` does.
    """

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
        rescale_offset: bool = False,
        include_top: bool = False,
        flip_channel_order: bool = False,
        steps: Sequence[Step] | None = None,
        pad: tuple[int, int] | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise In9Error(f"protocol={protocol!r}: choose one of {', '.join(PROTOCOLS)}")
        self.protocol = protocol
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        if len(self.mean) != 3 or len(self.std) != 3:
            raise In9Error(f"mean={self.mean}, std={self.std}: give 3 values each (R, G, B)")
        self.input_size = tuple(input_size)
        self.resample = int(resample)
        self.steps = (
            tuple(steps) if steps is not None else _default_steps(resize, tuple(crop) if crop else None)
        )
        # The first resize and crop, for callers that ask (the steps are what runs).
        self.resize = resize or next((s.spec for s in self.steps if isinstance(s, Resize)), None)
        self.crop = (
            tuple(crop) if crop else next((s.size for s in self.steps if isinstance(s, CenterCrop)), None)
        )
        self.rescale_factor = float(rescale_factor)
        self.normalize = normalize
        self.rescale_offset = bool(rescale_offset)
        self.include_top = bool(include_top)
        self.flip_channel_order = bool(flip_channel_order)
        self.pad = tuple(pad) if pad else None
        # The per-channel multiply-add, in float64 before one rounding to float32.
        mean64 = np.array(self.mean if normalize else (0.0,) * 3, dtype=np.float64)
        std64 = np.array(self.std if normalize else (1.0,) * 3, dtype=np.float64)
        divisor = std64 * (np.array(self.std, dtype=np.float64) if self.include_top else 1.0)
        scale = self.rescale_factor / divisor
        shift = (-(1.0 if self.rescale_offset else 0.0) - mean64) / divisor
        if self.flip_channel_order:  # output channel k is input channel 2 - k, processed with its constants
            scale, shift = scale[::-1], shift[::-1]
        self._scale, self._shift = tuple(scale.tolist()), tuple(shift.tolist())
        self._cached: tuple | None = None  # (device, size, memory format), scale, shift

    def __repr__(self) -> str:
        # Part of the prediction cache key: the fields of the first version always, every other one only when
        # it is not its default, so an unchanged pipeline keeps its cached predictions.
        extras = []
        if self.steps != _default_steps(self.resize, self.crop):
            extras.append(f"steps={self.steps}")
        if self.rescale_factor != 1 / 255:
            extras.append(f"rescale_factor={self.rescale_factor!r}")
        if not self.normalize:
            extras.append("normalize=False")
        for name in ("rescale_offset", "include_top", "flip_channel_order"):
            if getattr(self, name):
                extras.append(f"{name}=True")
        if self.pad:
            extras.append(f"pad={self.pad}")
        return (
            f"Preprocess(protocol={self.protocol!r}, input_size={self.input_size}, resize={self.resize}, "
            f"crop={self.crop}, resample={self.resample}, mean={self.mean}, std={self.std}"
            + "".join(f", {e}" for e in extras)
            + ")"
        )

    def geometry(self, images: Tensor) -> Tensor:
        """The uint8 resize / crop part of the protocol."""
        height, width = images.shape[-2:]
        if self.protocol == "paper":
            if (height, width) != self.input_size:
                images = resize_uint8(images, self.input_size, self.resample)
            return images
        for step in self.steps:
            if isinstance(step, Resize):
                images = resize_uint8(images, step.output_size(*images.shape[-2:]), self.resample)
            else:
                images = center_crop(images, step.output_size(*images.shape[-2:]))
        return images

    def _affine(self, like: Tensor) -> tuple[Tensor, Tensor]:
        # The factors are full (1,3,H,W) maps in the batch's memory format: broadcasting a 3-vector over
        # the innermost (channels-last) dimension does not vectorise; same bytes.
        fmt = _memory_format(like)
        key = (like.device, tuple(like.shape[-2:]), fmt)
        if self._cached is None or self._cached[0] != key:
            full = (1, 3, *like.shape[-2:])
            scale, shift = (
                torch.tensor(v, dtype=torch.float64)
                .to(torch.float32)
                .view(1, -1, 1, 1)
                .expand(full)
                .to(like.device)
                for v in (self._scale, self._shift)
            )
            scale, shift = scale.contiguous(memory_format=fmt), shift.contiguous(memory_format=fmt)
            self._cached = (key, scale, shift)
        return self._cached[1], self._cached[2]

    def __call__(self, images: Tensor) -> Tensor:
        """Keeps the memory format of ``images`` (channels-last in, channels-last out)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a uint8 (N,3,H,W) batch, got shape {tuple(images.shape)}")
        x = self.geometry(images)
        fmt = _memory_format(x)
        if self.flip_channel_order:
            x = x.flip(1).contiguous(memory_format=fmt)
        x = x.to(torch.float32)
        scale, shift = self._affine(x)
        x = x.mul_(scale).add_(shift)
        if self.pad:
            x = self._pad(x, fmt)
        return x

    def _pad(self, x: Tensor, fmt) -> Tensor:
        (height, width), (target_h, target_w) = x.shape[-2:], self.pad
        if height > target_h or width > target_w:
            raise In9Error(
                f"a {height}x{width} image is larger than the image processor's pad_size={self.pad}; "
                "the processor refuses it too"
            )
        x = torch.nn.functional.pad(x, (0, target_w - width, 0, target_h - height))
        return x.contiguous(memory_format=fmt)


def _memory_format(x: Tensor):
    if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


# --- from a transformers image processor ---------------------------------------------------------------
# The methods that decide what a processor does to an image; a processor class matches a rule below only if
# each of them is the base backend's or that rule's class's own, and that class overrides exactly the ones
# the rule was written from (transformers 5, models/*/image_processing_pil_*.py).
_PIPELINE_METHODS = (
    "__call__",
    "preprocess",
    "_standardize_kwargs",
    "_preprocess_image_like_inputs",
    "_prepare_image_like_inputs",
    "_prepare_images_structure",
    "fetch_images",
    "process_image",
    "convert_to_rgb",
    "_preprocess",
    "resize",
    "center_crop",
    "rescale",
    "normalize",
    "pad",
    "flip_channel_order",
)
_PIL_BACKEND = "transformers.image_processing_backends.PilBackend"
_BASES = frozenset(
    {
        _PIL_BACKEND,
        "transformers.image_processing_utils.BaseImageProcessor",
        "transformers.image_processing_base.ImageProcessingMixin",
    }
)
_SEGMENTATION_WRAPPER = frozenset({"preprocess", "_preprocess_image_like_inputs", "_preprocess"})


def _qualname(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _owner(cls, name: str):
    return next((c for c in cls.__mro__ if name in vars(c)), None)


class _Args:
    """The keyword arguments ``processor.preprocess(images)`` hands to ``_preprocess``, built the same way:
    every valid kwarg from the processor's attributes (the caller's overrides first), standardised."""

    def __init__(self, processor, overrides: dict) -> None:
        names = getattr(processor, "_valid_kwargs_names", None) or list(
            processor.valid_kwargs.__annotations__
        )
        kwargs = dict(overrides)
        for name in names:
            kwargs.setdefault(name, getattr(processor, name, None))
        self.kwargs = processor._standardize_kwargs(**kwargs)

    def get(self, name: str, default=None):
        # A name preprocess() passes wins even when None (it overrides _preprocess's own default, as there).
        return self.kwargs[name] if name in self.kwargs else default


def _size(value) -> dict:
    return dict(value) if value is not None else {}


def _hw(size: dict, what: str, name: str) -> tuple[int, int]:
    if not (size.get("height") and size.get("width")):
        raise NotReproducible(f"image processor {name}: {what}={size} has no height and width")
    return (int(size["height"]), int(size["width"]))


def _pil_backend_resize(size: dict, name: str) -> ResizeSpec:
    # PilBackend.resize, its branches in its order.
    if size.get("shortest_edge") and size.get("longest_edge"):
        return ResizeSpec(shortest_edge=int(size["shortest_edge"]), longest_edge=int(size["longest_edge"]))
    if size.get("shortest_edge"):
        return ResizeSpec(shortest_edge=int(size["shortest_edge"]))
    if size.get("max_height") and size.get("max_width"):
        return ResizeSpec(max_size=(int(size["max_height"]), int(size["max_width"])))
    if size.get("height") and size.get("width"):
        return ResizeSpec(exact=(int(size["height"]), int(size["width"])))
    raise NotReproducible(f"image processor {name}: size={size} is not a size its resize takes")


def _levit_resize(size: dict, name: str) -> ResizeSpec:
    if size.get("shortest_edge"):
        return ResizeSpec(shortest_edge=int((256 / 224) * size["shortest_edge"]))
    _hw(size, "size", name)
    return _pil_backend_resize(size, name)


def _poolformer_resize(size: dict, crop_pct, name: str) -> ResizeSpec:
    if crop_pct is None:
        return _pil_backend_resize(size, name)
    if size.get("shortest_edge"):
        return ResizeSpec(shortest_edge=int(size["shortest_edge"] / crop_pct))
    height, width = _hw(size, "size", name)
    if height == width:
        return ResizeSpec(shortest_edge=int(height / crop_pct))
    return ResizeSpec(exact=(int(height / crop_pct), int(width / crop_pct)))


def _convnext_resize(size: dict, crop_pct, name: str) -> tuple:
    edge = size.get("shortest_edge")
    if not edge:
        raise NotReproducible(f"image processor {name}: size={size} has no shortest_edge")
    if edge < 384:  # the short side to edge / crop_pct, then crop edge x edge
        if crop_pct is None:
            raise NotReproducible(f"image processor {name}: crop_pct=None with size={size}")
        return (Resize(ResizeSpec(shortest_edge=int(edge / crop_pct))), CenterCrop((edge, edge)))
    return (Resize(ResizeSpec(exact=(edge, edge))),)  # warped, no crop, at 384 and above


@dataclass
class _Recipe:
    steps: tuple = ()
    rescale: bool = False
    normalize: bool = False
    rescale_offset: bool = False
    include_top: bool = False
    flip_channel_order: bool = False
    pad: tuple[int, int] | None = None


def _standard(a: _Args, name: str, resize, *, crop: bool = True, pad: bool = True) -> _Recipe:
    """resize -> centre crop -> rescale -> normalise (-> pad): PilBackend._preprocess and its copies."""
    steps = ()
    if a.get("do_resize"):
        steps += resize()
    if crop and a.get("do_center_crop"):
        steps += (CenterCrop(_hw(_size(a.get("crop_size")), "crop_size", name)),)
    recipe = _Recipe(steps, rescale=bool(a.get("do_rescale")), normalize=bool(a.get("do_normalize")))
    if pad and a.get("do_pad"):
        pad_size = _size(a.get("pad_size"))
        # Without pad_size it pads to the largest image of the call: one image (or one size) needs none.
        recipe.pad = _hw(pad_size, "pad_size", name) if pad_size else None
    return recipe


def _resize_by(a: _Args, name: str, rule=_pil_backend_resize):
    return lambda: (Resize(rule(_size(a.get("size")), name)),)


def _plain(a, name):
    return _standard(a, name, _resize_by(a, name))


def _levit(a, name):
    return _standard(a, name, _resize_by(a, name, _levit_resize))


def _segmentation(a, name):  # BEiT, data2vec-vision, MobileNetV2: the plain image path, no padding
    return _standard(a, name, _resize_by(a, name), pad=False)


def _segformer(a, name):  # no centre crop at all, whatever do_center_crop says
    return _standard(a, name, _resize_by(a, name), crop=False, pad=False)


def _convnext(a, name):
    return _standard(
        a, name, lambda: _convnext_resize(_size(a.get("size")), a.get("crop_pct", 224 / 256), name), pad=False
    )


def _poolformer(a, name):
    crop_pct = a.get("crop_pct", 0.9)
    return _standard(a, name, lambda: (Resize(_poolformer_resize(_size(a.get("size")), crop_pct, name)),))


def _textnet(a, name):
    def resize():
        size = _size(a.get("size"))
        if not size.get("shortest_edge"):
            raise NotReproducible(f"image processor {name}: size={size} has no shortest_edge")
        return (
            Resize(ResizeSpec(shortest_edge=int(size["shortest_edge"]), divisor=a.get("size_divisor", 32))),
        )

    return _standard(a, name, resize, pad=False)


def _efficientnet(a, name):  # the plain image path, rescale_offset, include_top; no padding
    recipe = _standard(a, name, _resize_by(a, name), pad=False)
    recipe.rescale_offset = recipe.rescale and bool(a.get("rescale_offset", False))
    recipe.include_top = bool(a.get("include_top", True))
    return recipe


def _perceiver(a, name):  # centre crop of a fraction of the short side, then resize
    steps = ()
    if a.get("do_center_crop"):
        size, crop_size = _size(a.get("size")), _size(a.get("crop_size"))
        steps += (RelativeCenterCrop(_hw(size, "size", name), _hw(crop_size, "crop_size", name)),)
    if a.get("do_resize"):
        steps += (Resize(_pil_backend_resize(_size(a.get("size")), name)),)
    return _Recipe(steps, rescale=bool(a.get("do_rescale")), normalize=bool(a.get("do_normalize")))


def _mobilevit(a, name):  # resize -> rescale -> crop -> flip; it never normalises
    recipe = _standard(a, name, _resize_by(a, name), pad=False)
    recipe.normalize = False
    recipe.flip_channel_order = bool(a.get("do_flip_channel_order", True))
    return recipe


_M = "transformers.models."
# class -> (the pipeline methods it overrides itself, its rule); no entry: PilBackend's own pipeline.
_RULES = {
    _M + "levit.image_processing_pil_levit.LevitImageProcessorPil": ({"resize"}, _levit),
    _M + "convnext.image_processing_pil_convnext.ConvNextImageProcessorPil": (
        {"resize", "_preprocess"},
        _convnext,
    ),
    _M + "efficientnet.image_processing_pil_efficientnet.EfficientNetImageProcessorPil": (
        {"rescale", "_preprocess"},
        _efficientnet,
    ),
    _M + "poolformer.image_processing_pil_poolformer.PoolFormerImageProcessorPil": (
        {"resize", "_preprocess"},
        _poolformer,
    ),
    _M + "perceiver.image_processing_pil_perceiver.PerceiverImageProcessorPil": (
        {"center_crop", "_preprocess"},
        _perceiver,
    ),
    _M + "mobilevit.image_processing_pil_mobilevit.MobileViTImageProcessorPil": (
        _SEGMENTATION_WRAPPER | {"flip_channel_order"},
        _mobilevit,
    ),
    _M + "beit.image_processing_pil_beit.BeitImageProcessorPil": (_SEGMENTATION_WRAPPER, _segmentation),
    _M + "mobilenet_v2.image_processing_pil_mobilenet_v2.MobileNetV2ImageProcessorPil": (
        _SEGMENTATION_WRAPPER,
        _segmentation,
    ),
    _M + "segformer.image_processing_pil_segformer.SegformerImageProcessorPil": (
        _SEGMENTATION_WRAPPER,
        _segformer,
    ),
    _M + "textnet.image_processing_pil_textnet.TextNetImageProcessorPil": (
        {"preprocess", "resize", "_preprocess"},
        _textnet,
    ),
}


def _rule_for(processor):
    """The rule for this processor's class, or NotReproducible naming what it does differently."""
    cls, name = type(processor), type(processor).__name__
    owners = {m: _owner(cls, m) for m in _PIPELINE_METHODS}
    if _PIL_BACKEND not in {_qualname(c) for c in cls.__mro__}:
        raise NotReproducible(f"image processor {name}: not a transformers PIL-backend image processor")
    own = {m: _qualname(c) for m, c in owners.items() if c is not None and _qualname(c) not in _BASES}
    if not own:
        return _plain
    ruled = set(own.values())
    if len(ruled) == 1 and (key := ruled.pop()) in _RULES:
        methods, rule = _RULES[key]
        if set(own) == methods:
            return rule
    listed = ", ".join(f"{m} ({c.rsplit('.', 1)[-1]})" for m, c in sorted(own.items()))
    raise NotReproducible(f"image processor {name}: its own {listed} have no tensor rule")


def _triple(value, what: str, name: str) -> tuple[float, float, float]:
    if value is None:
        raise NotReproducible(f"image processor {name}: {what}=None while it normalises")
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    if len(value) != 3:
        raise NotReproducible(f"image processor {name}: {what}={value} is not 3 values (R, G, B)")
    return tuple(float(v) for v in value)


def _resample(value, name: str) -> int:
    if value is None:
        return BILINEAR  # PilBackend.resize's default
    if isinstance(value, (int, np.integer)) and int(value) in (NEAREST, *_FILTERS):
        return int(value)
    raise NotReproducible(f"image processor {name}: resample={value!r} is not a PIL filter (0-5)")


def _run_size(steps, height: int, width: int) -> tuple[int, int]:
    for step in steps:
        height, width = step.output_size(height, width)
    return (height, width)


# paper: the processor without its resize and crop, what processor(images, do_resize=False,
# do_center_crop=False) does; the image is resized to the input size first only when it has another size.
PAPER_OVERRIDES = {"do_resize": False, "do_center_crop": False}


def from_image_processor(processor, protocol: str = "paper") -> Preprocess:
    """A :class:`Preprocess` doing what the transformers image processor (PIL backend) does under
    ``protocol``; :class:`NotReproducible` when its class has code the tensor path has no rule for."""
    if protocol not in PROTOCOLS:
        raise In9Error(f"protocol={protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    name = type(processor).__name__
    rule = _rule_for(processor)
    args = _Args(processor, {})
    full = rule(args, name)  # the processor as configured: what `processor` runs, and the model's input size
    recipe = full if protocol == "processor" else rule(_Args(processor, PAPER_OVERRIDES), name)
    normalize = recipe.normalize
    mean = _triple(args.get("image_mean"), "image_mean", name) if normalize else (0.0,) * 3
    std = _triple(args.get("image_std"), "image_std", name) if normalize or recipe.include_top else (1.0,) * 3
    rescale = args.get("rescale_factor") if recipe.rescale else 1.0
    if rescale is None:
        raise NotReproducible(f"image processor {name}: rescale_factor=None while it rescales")
    if recipe.include_top and not normalize:
        # include_top divides by std even without do_normalize: a zero mean and the std, divided twice
        # would be wrong, so the second division alone is written as mean 0 / std with no include_top.
        mean, include_top = (0.0,) * 3, False
    else:
        include_top = recipe.include_top
    return Preprocess(
        mean=mean,
        std=std,
        input_size=_run_size(full.steps, 224, 224),
        protocol=protocol,
        resample=_resample(args.get("resample"), name),
        steps=full.steps,
        rescale_factor=float(rescale),
        rescale_offset=recipe.rescale_offset,
        include_top=include_top,
        flip_channel_order=recipe.flip_channel_order,
        pad=recipe.pad,
    )
