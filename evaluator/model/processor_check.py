"""The load-time check: the batched tensor preprocessing against the model's own image processor.

The processor (PIL backend) runs on a few deterministic images, the tensor path on the same uint8 pixels.
Equal to ``TOLERANCE`` (float rounding): the tensor path runs. Otherwise, or when the processor's class
has code the tensor path has no rule for, :class:`ProcessorPreprocess` runs the processor itself on every
image: correct, slower. Either way ``record`` says which path ran, for the results.json "model" block;
the evaluator never scores on a tensor that differs from the processor's.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from evaluator.model.preprocess import (
    BICUBIC,
    BILINEAR,
    NEAREST,
    PAPER_OVERRIDES,
    PROTOCOLS,
    NotReproducible,
    Preprocess,
    from_image_processor,
)
from in9_builder.errors import In9Error

TOLERANCE = 1e-5
# IN-9 images are 224 x 224; one non-square size covers the resize rules' aspect-ratio branches.
CHECK_SHAPES = ((224, 224), (224, 224), (300, 200))
_PIL_FILTERS = (NEAREST, 1, BILINEAR, BICUBIC, 4, 5)


def check_images(shapes=CHECK_SHAPES, seed: int = 0) -> list[np.ndarray]:
    """Deterministic uint8 (H, W, 3) images: noise over a gradient, with pure black and white pixels (the
    clipping of bicubic / Lanczos overshoot and the rounding of every value are exercised)."""
    rng = np.random.default_rng(seed)
    images = []
    for height, width in shapes:
        ramp = np.linspace(0, 255, width)[None, :, None] * np.linspace(0.2, 1.0, height)[:, None, None]
        noise = rng.normal(0, 60, (height, width, 3))
        image = np.clip(ramp + noise, 0, 255).astype(np.uint8)
        image[: height // 8, : width // 8] = 0
        image[-(height // 8) :, -(width // 8) :] = 255
        images.append(image)
    return images


def _resample_of(processor) -> int:
    value = getattr(processor, "resample", None)
    if value is None:
        return BILINEAR  # the PIL backend's default
    # Only paper's resize of an image that is not the input size uses it (IN-9 images are): a filter that is
    # not Pillow's (remote code) gets bicubic there, the processors' most common one.
    try:
        value = int(value)
    except (TypeError, ValueError):
        return BICUBIC
    return value if value in _PIL_FILTERS else BICUBIC


def _pixel_values(processor, image: Image.Image, overrides: dict) -> Tensor:
    name = type(processor).__name__
    try:
        out = processor(images=[image], return_tensors="pt", **overrides)
    except Exception as exc:  # the processor's own failure: nothing to score with
        raise In9Error(
            f"image processor {name} fails on a {image.height}x{image.width} RGB image "
            f"({type(exc).__name__}: {exc}); the model cannot be scored through it"
        ) from exc
    values = out.get("pixel_values") if hasattr(out, "get") else None
    if not isinstance(values, Tensor) or values.ndim != 4 or values.shape[:2] != (1, 3):
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise In9Error(
            f"image processor {name} gives pixel_values {shape} for one image, not (1, 3, H, W): "
            "not an RGB image classifier's input"
        )
    return values.to(torch.float32)


class ProcessorPreprocess:
    """The fallback: ``__call__(uint8 (N,3,H,W)) -> float32 (N,3,h,w)`` by the model's own image processor,
    one image at a time on the CPU (the result goes back to the batch's device and memory format).

    ``paper``: an image that is not ``input_size`` is first resized to it by Pillow with the processor's
    filter, then the processor runs with ``do_resize=False, do_center_crop=False``.
    """

    def __init__(self, processor, protocol: str, *, input_size: tuple[int, int] | None = None) -> None:
        if protocol not in PROTOCOLS:
            raise In9Error(f"protocol={protocol!r}: choose one of {', '.join(PROTOCOLS)}")
        self.processor = processor
        self.protocol = protocol
        self.resample = _resample_of(processor)
        if input_size is None:  # what the processor makes of an IN-9 image: the model's input size
            blank = Image.fromarray(np.zeros((224, 224, 3), dtype=np.uint8))
            input_size = tuple(_pixel_values(processor, blank, {}).shape[-2:])
        self.input_size = tuple(input_size)
        self._overrides = PAPER_OVERRIDES if protocol == "paper" else {}
        config = processor.to_json_string() if hasattr(processor, "to_json_string") else repr(processor)
        self._config_digest = hashlib.sha256(config.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        # Part of the prediction cache key: the class, the protocol and a digest of the processor's config.
        return (
            f"ProcessorPreprocess(protocol={self.protocol!r}, processor={type(self.processor).__name__}, "
            f"input_size={self.input_size}, config_sha256={self._config_digest})"
        )

    def image(self, image: np.ndarray) -> Tensor:
        """One uint8 (H, W, 3) image -> float32 (1, 3, h, w), exactly the processor's output."""
        pil = Image.fromarray(image)
        if self.protocol == "paper" and (pil.height, pil.width) != self.input_size:
            pil = pil.resize((self.input_size[1], self.input_size[0]), resample=self.resample)
        return _pixel_values(self.processor, pil, self._overrides)

    def __call__(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a uint8 (N,3,H,W) batch, got shape {tuple(images.shape)}")
        nhwc = images.detach().to("cpu").permute(0, 2, 3, 1).numpy()
        out = torch.cat([self.image(np.ascontiguousarray(image)) for image in nhwc]).to(images.device)
        if images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
            out = out.contiguous(memory_format=torch.channels_last)
        return out


def _max_abs_diff(ours: Tensor, ref: Tensor) -> float:
    if ours.shape != ref.shape:
        return math.inf
    diff = (ours.to(torch.float64) - ref.to(torch.float64)).abs().max().item()
    return math.inf if math.isnan(diff) else diff


def checked_preprocess(processor, protocol: str, *, images: list[np.ndarray] | None = None):
    """``(preprocess, record)``: the tensor path if it equals the processor on ``images`` (default
    :func:`check_images`) to ``TOLERANCE``, else :class:`ProcessorPreprocess`. ``record``: ``{"path":
    "tensor" | "processor", "image_processor": class name, "checked_images": n, "max_abs_diff": float | None
    (None: no tensor rule, or different shapes), "reason": why the processor runs (fallback only)}``."""
    images = check_images() if images is None else images
    try:
        tensor: Preprocess | None = from_image_processor(processor, protocol)
    except NotReproducible as exc:
        tensor, reason = None, str(exc)
    fallback = ProcessorPreprocess(processor, protocol, input_size=tensor.input_size if tensor else None)
    worst = 0.0
    for image in images:
        ref = fallback.image(image)  # the reference itself: the processor on this image
        if tensor is not None:
            ours = tensor(torch.from_numpy(image).permute(2, 0, 1)[None].contiguous())
            worst = max(worst, _max_abs_diff(ours, ref))
    record = {
        "image_processor": type(processor).__name__,
        "checked_images": len(images),
        "max_abs_diff": worst if tensor is not None and math.isfinite(worst) else None,
    }
    if tensor is not None and worst <= TOLERANCE:
        return tensor, {"path": "tensor", **record}
    if tensor is not None:
        reason = (
            f"the tensor path differs from the processor by {worst:.3g} (> {TOLERANCE:g})"
            if math.isfinite(worst)
            else "the tensor path gives another shape than the processor"
        )
    return fallback, {"path": "processor", **record, "reason": reason}
