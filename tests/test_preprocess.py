"""Preprocessing: paper = ToTensor + normalise on 224 inputs; processor = the model's own."""

import numpy as np
import pytest
import torch
from PIL import Image

from evaluator.model.preprocess import Preprocess, center_crop, from_image_processor, resize_uint8
from in9_builder.errors import In9Error

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _images(n, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _batch(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize("resample", [1, 2, 3, 4, 5])
# Shapes where both sides scale the same way (what image processors do). Pillow 13 picks the order of its two
# passes itself when one side grows and the other shrinks; we always go horizontal first.
@pytest.mark.parametrize(
    ("src", "dst"),
    [((224, 224), (256, 256)), ((224, 224), (160, 160)), ((300, 200), (224, 149)), ((61, 47), (80, 62))],
)
def test_resize_is_byte_identical_to_pil(resample, src, dst):
    images = _images(2, *src)
    ours = resize_uint8(_batch(images), dst, resample).permute(0, 2, 3, 1).numpy()
    for img, out in zip(images, ours, strict=True):
        ref = np.asarray(Image.fromarray(img).resize((dst[1], dst[0]), resample=resample))
        assert np.array_equal(out, ref)


def test_paper_equals_totensor_and_normalise_on_224():
    images = _images(3, 224, 224)
    out = Preprocess(mean=MEAN, std=STD, protocol="paper")(_batch(images))
    ref = (images.astype(np.float64) / 255.0 - np.array(MEAN)) / np.array(STD)
    assert out.dtype == torch.float32 and out.shape == (3, 3, 224, 224)
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), ref, atol=1e-5)


def test_paper_resizes_only_when_the_model_needs_another_size():
    images = _batch(_images(1, 160, 160))
    out = Preprocess(mean=MEAN, std=STD, input_size=(224, 224), protocol="paper")(images)
    assert out.shape == (1, 3, 224, 224)


def _convnext(**kw):
    from transformers.models.convnext.image_processing_pil_convnext import ConvNextImageProcessorPil

    args = dict(crop_pct=0.875, size={"shortest_edge": 224}, resample=3, image_mean=MEAN, image_std=STD)
    return ConvNextImageProcessorPil(**{**args, **kw})


def _vit():
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    return ViTImageProcessorPil(
        size={"height": 96, "width": 128}, resample=2, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )


@pytest.mark.parametrize("make", [_convnext, lambda: _convnext(size={"shortest_edge": 384}), _vit])
@pytest.mark.parametrize("shape", [(224, 224), (180, 240)])
def test_processor_protocol_matches_the_model_image_processor(make, shape):
    processor = make()
    images = _images(2, *shape, seed=1)
    ref = processor(images=[Image.fromarray(i) for i in images], return_tensors="pt")["pixel_values"]
    ours = from_image_processor(processor, "processor")(_batch(images))
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() < 1e-5


def test_paper_protocol_from_a_cropping_processor_keeps_224_images_untouched():
    pre = from_image_processor(_convnext(), "paper")
    assert pre.input_size == (224, 224)
    images = _batch(_images(1, 224, 224))
    assert torch.equal(pre.geometry(images), images)


def test_center_crop_offsets():
    x = torch.arange(6 * 5).view(1, 1, 6, 5)
    assert center_crop(x, (3, 3)).flatten().tolist() == [6, 7, 8, 11, 12, 13, 16, 17, 18]


def test_unknown_protocol_is_a_user_error():
    with pytest.raises(In9Error, match="protocol='resize'"):
        Preprocess(mean=MEAN, std=STD, protocol="resize")


def test_normalisation_is_the_same_bytes_in_any_memory_format_and_size():
    """The full-size factor maps (fast on channels-last) give exactly x * (1/255/std) + (-mean/std)."""
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    pre = Preprocess(mean=mean, std=std, input_size=(24, 24))
    scale = (1 / 255 / torch.tensor(std, dtype=torch.float64)).float().view(1, 3, 1, 1)
    shift = (-torch.tensor(mean, dtype=torch.float64) / torch.tensor(std, dtype=torch.float64)).float()
    gen = torch.Generator().manual_seed(0)
    for size in (24, 24, 16):  # a new size (paper: resized to 24) and a new layout rebuild the maps
        nhwc = torch.randint(0, 256, (5, size, size, 3), dtype=torch.uint8, generator=gen)
        for batch in (nhwc.permute(0, 3, 1, 2), nhwc.permute(0, 3, 1, 2).contiguous()):
            x = pre.geometry(batch).float()
            expected = x.mul(scale).add(shift.view(1, 3, 1, 1))
            out = pre(batch)
            assert torch.equal(out, expected)
            assert out.is_contiguous() == x.is_contiguous()  # the layout it was given
