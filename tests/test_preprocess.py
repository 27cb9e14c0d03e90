"""Preprocessing: paper = ToTensor + normalise on 224 inputs; processor = the model's own."""

import numpy as np
import pytest
import torch
from PIL import Image

from evaluator.model.preprocess import (
    NotReproducible,
    Preprocess,
    center_crop,
    from_image_processor,
    resize_uint8,
    resize_uint8_torch,
)
from evaluator.model.processor_check import CHECK_SHAPES, ProcessorPreprocess, checked_preprocess
from in9_builder.errors import In9Error

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _images(n, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _batch(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize("resample", [0, 1, 2, 3, 4, 5])
# Both sides the same way, and one growing while the other shrinks; the last three are Pillow 13's vertical-
# first cases (the height shrinks by more than twice as many pixels as the width) and one just outside it.
@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ((224, 224), (256, 256)),
        ((224, 224), (160, 160)),
        ((300, 200), (224, 149)),
        ((61, 47), (80, 62)),
        ((300, 200), (224, 224)),
        ((200, 300), (224, 224)),
        ((150, 90), (74, 55)),
        ((120, 120), (60, 91)),
        ((120, 120), (60, 90)),
    ],
)
@pytest.mark.parametrize("resize", [resize_uint8, resize_uint8_torch])
def test_resize_is_byte_identical_to_pil(resize, resample, src, dst):
    images = _images(2, *src)
    ours = resize(_batch(images), dst, resample).permute(0, 2, 3, 1).numpy()
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


# --- every image-classification family's processor, with its Hub preprocessor_config.json values ---------
IMAGENET_DEFAULT = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
HALF = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
CROP_224 = {"crop_size": {"height": 224, "width": 224}, "do_center_crop": True}
# (family, processor class, config) as the Hub repositories store them (random weights do not matter here).
HUB_PROCESSORS = [
    (
        "resnet-50",
        "ConvNextImageProcessorPil",
        {"crop_pct": 0.875, "size": {"shortest_edge": 224}, "resample": 3, **IMAGENET_DEFAULT},
    ),
    (
        "convnext-large-384",
        "ConvNextImageProcessorPil",
        {"crop_pct": 0.875, "size": {"shortest_edge": 384}, "resample": 3, **IMAGENET_DEFAULT},
    ),
    ("vit", "ViTImageProcessorPil", {"size": {"height": 224, "width": 224}, "resample": 2, **HALF}),
    ("vit-384", "ViTImageProcessorPil", {"size": {"height": 384, "width": 384}, "resample": 2, **HALF}),
    (
        "deit-distilled",
        "DeiTImageProcessorPil",
        {"size": {"height": 256, "width": 256}, "resample": 3, **CROP_224, **IMAGENET_DEFAULT},
    ),
    (
        "swin",
        "ViTImageProcessorPil",
        {"size": {"height": 224, "width": 224}, "resample": 3, **IMAGENET_DEFAULT},
    ),
    (
        "bit",
        "BitImageProcessorPil",
        {
            "size": {"shortest_edge": 448},
            "crop_size": {"height": 448, "width": 448},
            "resample": 2,
            "do_center_crop": True,
            **HALF,
        },
    ),
    (
        "dinov2-imagenet1k",
        "BitImageProcessorPil",
        {"size": {"shortest_edge": 256}, "resample": 3, **CROP_224, **IMAGENET_DEFAULT},
    ),
    (
        "mobilenet_v1",
        "MobileNetV1ImageProcessorPil",
        {"size": {"shortest_edge": 256}, "resample": 2, **CROP_224, **HALF},
    ),
    (
        "efficientnet-b0",
        "EfficientNetImageProcessorPil",
        {
            "size": {"height": 224, "width": 224},
            "crop_size": {"height": 289, "width": 289},
            "do_center_crop": False,
            "resample": 0,
            "rescale_factor": 1 / 255,
            "rescale_offset": False,
            "include_top": True,
            "image_mean": [0.485, 0.456, 0.406],
            "image_std": [0.47853944, 0.4732864, 0.47434163],
        },
    ),
    (
        "efficientnet-offset",
        "EfficientNetImageProcessorPil",
        {
            "size": {"height": 240, "width": 240},
            "do_center_crop": False,
            "resample": 3,
            "rescale_factor": 1 / 127.5,
            "rescale_offset": True,
            "include_top": True,
            **HALF,
        },
    ),
    (
        "efficientnet-no-normalize",
        "EfficientNetImageProcessorPil",
        {"size": {"height": 224, "width": 224}, "do_normalize": False, "include_top": True, **HALF},
    ),
    (
        "mobilevit-small",
        "MobileViTImageProcessorPil",
        {
            "size": {"shortest_edge": 288},
            "crop_size": {"height": 256, "width": 256},
            "do_center_crop": True,
            "do_flip_channel_order": True,
            "resample": 2,
        },
    ),
    (
        "mobilevitv2",
        "MobileViTImageProcessorPil",
        {
            "size": {"shortest_edge": 256},
            "crop_size": {"height": 256, "width": 256},
            "do_center_crop": True,
            "do_flip_channel_order": True,
            "resample": 2,
        },
    ),
    (
        "levit-128S",
        "LevitImageProcessorPil",
        {"size": {"shortest_edge": 224}, "resample": 3, **CROP_224, **IMAGENET_DEFAULT},
    ),
    (
        "beit",
        "BeitImageProcessorPil",
        {"size": {"height": 224, "width": 224}, "resample": 2, "do_center_crop": False, **HALF},
    ),
    (
        "data2vec-vision",
        "BeitImageProcessorPil",
        {
            "size": {"height": 224, "width": 224},
            "resample": 2,
            "crop_size": {"height": 224, "width": 224},
            "do_center_crop": False,
            **HALF,
        },
    ),
    (
        "mobilenet_v2",
        "MobileNetV2ImageProcessorPil",
        {"size": {"shortest_edge": 256}, "resample": 2, **CROP_224, **HALF},
    ),
    (
        "segformer-mit-b0",
        "SegformerImageProcessorPil",
        {"size": {"height": 224, "width": 224}, "resample": 2, **IMAGENET_DEFAULT},
    ),
    (
        "poolformer",
        "PoolFormerImageProcessorPil",
        {"crop_pct": 0.9, "size": {"shortest_edge": 224}, "resample": 3, **CROP_224, **IMAGENET_DEFAULT},
    ),
    (
        "perceiver",
        "PerceiverImageProcessorPil",
        {
            "size": {"height": 224, "width": 224},
            "crop_size": {"height": 256, "width": 256},
            "do_center_crop": True,
            "resample": 3,
            **IMAGENET_DEFAULT,
        },
    ),
    (
        "cvt",
        "ConvNextImageProcessorPil",
        {"crop_pct": 0.875, "size": {"shortest_edge": 224}, "resample": 3, **IMAGENET_DEFAULT},
    ),
    (
        "pvt",
        "PvtImageProcessorPil",
        {"size": {"height": 224, "width": 224}, "resample": 2, **IMAGENET_DEFAULT},
    ),
    ("siglip", "SiglipImageProcessorPil", {"size": {"height": 224, "width": 224}, "resample": 3, **HALF}),
    ("clip", "CLIPImageProcessorPil", {"size": {"shortest_edge": 224}, "resample": 3, **CROP_224}),
    (
        "textnet",
        "TextNetImageProcessorPil",
        {"size": {"shortest_edge": 256}, "size_divisor": 32, "resample": 2, **IMAGENET_DEFAULT},
    ),
    (
        "no-rescale",
        "ViTImageProcessorPil",
        {
            "size": {"height": 224, "width": 224},
            "do_rescale": False,
            "image_mean": [123.675, 116.28, 103.53],
            "image_std": [58.395, 57.12, 57.375],
        },
    ),
    (
        "pad",
        "ViTImageProcessorPil",
        {
            "size": {"height": 200, "width": 200},
            "do_pad": True,
            "pad_size": {"height": 232, "width": 240},
            **HALF,
        },
    ),
]


def _processor(cls_name: str, config: dict):
    import transformers

    return getattr(transformers, cls_name)(**config)


def _reference(processor, images, **overrides):
    """The processor itself, one PIL image at a time: the independent reference."""
    return torch.cat(
        [
            processor(images=[Image.fromarray(i)], return_tensors="pt", **overrides)["pixel_values"]
            for i in images
        ]
    )


@pytest.mark.parametrize(("family", "cls_name", "config"), HUB_PROCESSORS, ids=[h[0] for h in HUB_PROCESSORS])
@pytest.mark.parametrize("shape", [(224, 224), (300, 200), (150, 333)])
def test_processor_protocol_equals_every_family_processor(family, cls_name, config, shape):
    processor = _processor(cls_name, config)
    images = _images(2, *shape, seed=3)
    ref = _reference(processor, images)
    ours = from_image_processor(processor, "processor")(_batch(images))
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() <= 1e-5


@pytest.mark.parametrize(("family", "cls_name", "config"), HUB_PROCESSORS, ids=[h[0] for h in HUB_PROCESSORS])
def test_paper_protocol_is_the_processor_without_resize_and_crop(family, cls_name, config):
    processor = _processor(cls_name, config)
    pre = from_image_processor(processor, "paper")
    # The model's input size: what its processor makes of an IN-9 image (before any padding).
    assert pre.input_size == tuple(_reference(processor, _images(1, 224, 224), do_pad=False).shape[-2:])
    for shape in [(224, 224), (160, 192)]:
        images = _images(2, *shape, seed=4)
        resized = [
            np.asarray(Image.fromarray(i).resize(pre.input_size[::-1], resample=pre.resample))
            if shape != pre.input_size
            else i
            for i in images
        ]
        ref = _reference(processor, resized, do_resize=False, do_center_crop=False)
        ours = pre(_batch(images))
        assert ours.shape == ref.shape
        assert (ours - ref).abs().max().item() <= 1e-5


def test_the_extra_attributes_change_the_numbers():
    """The three families the evaluator once scored on wrong input: each attribute is now applied."""
    images = _batch(_images(1, 224, 224, seed=5))
    by_family = {h[0]: h for h in HUB_PROCESSORS}
    _, cls_name, config = by_family["efficientnet-b0"]
    top = from_image_processor(_processor(cls_name, config), "paper")(images)
    no_top = from_image_processor(_processor(cls_name, {**config, "include_top": False}), "paper")(images)
    torch.testing.assert_close(top, no_top / torch.tensor(config["image_std"]).view(1, 3, 1, 1))
    _, cls_name, config = by_family["mobilevit-small"]
    flipped = from_image_processor(_processor(cls_name, config), "paper")(images)
    plain = from_image_processor(_processor(cls_name, {**config, "do_flip_channel_order": False}), "paper")
    assert torch.equal(flipped, plain(images).flip(1))
    _, cls_name, config = by_family["levit-128S"]
    levit = from_image_processor(_processor(cls_name, config), "processor")
    assert levit.resize.shortest_edge == 256 and levit.crop == (224, 224)


def test_the_cache_key_of_unchanged_pipelines_is_unchanged():
    """repr(Preprocess) keys the prediction cache: a pipeline this change leaves alone keeps its key."""
    pre = from_image_processor(_convnext(), "processor")
    assert repr(pre) == (
        "Preprocess(protocol='processor', input_size=(224, 224), resize=ResizeSpec(exact=None, "
        "shortest_edge=256), crop=(224, 224), resample=3, "
        "mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))"
    )
    effnet = _processor(*HUB_PROCESSORS[9][1:])
    assert "include_top=True" in repr(from_image_processor(effnet, "paper"))


# --- the load-time check and the fallback --------------------------------------------------------------
def _custom_processor_class():
    from transformers import ViTImageProcessorPil

    class Posterised(ViTImageProcessorPil):
        """A processor with a step of its own (remote code could do this): the tensor path has no rule."""

        def rescale(self, image, scale, **kwargs):
            return super().rescale((image // 16) * 16, scale, **kwargs)

    return Posterised


def test_a_processor_with_its_own_step_runs_itself_and_says_so():
    processor = _custom_processor_class()(size={"height": 224, "width": 224}, **HALF)
    with pytest.raises(NotReproducible, match=r"its own rescale \(Posterised\)"):
        from_image_processor(processor, "processor")
    for protocol in ("processor", "paper"):
        pre, record = checked_preprocess(processor, protocol)
        assert isinstance(pre, ProcessorPreprocess)
        assert record["path"] == "processor" and record["max_abs_diff"] is None
        assert record["checked_images"] == len(CHECK_SHAPES) and "Posterised" in record["reason"]
        images = _images(3, 224, 224, seed=6)
        overrides = {"do_resize": False, "do_center_crop": False} if protocol == "paper" else {}
        assert torch.equal(pre(_batch(images)), _reference(processor, images, **overrides))


def test_a_subclass_with_only_its_own_settings_keeps_the_tensor_path():
    from transformers import ViTImageProcessorPil

    class Settings(ViTImageProcessorPil):
        image_mean = [0.3, 0.4, 0.5]

    pre, record = checked_preprocess(Settings(), "processor")
    assert isinstance(pre, Preprocess) and record["path"] == "tensor"
    assert record["max_abs_diff"] <= 1e-5 and pre.mean == (0.3, 0.4, 0.5)


@pytest.mark.parametrize(("family", "cls_name", "config"), HUB_PROCESSORS, ids=[h[0] for h in HUB_PROCESSORS])
def test_every_family_passes_the_load_time_check(family, cls_name, config):
    for protocol in ("paper", "processor"):
        pre, record = checked_preprocess(_processor(cls_name, config), protocol)
        assert record["path"] == "tensor", record
        assert isinstance(pre, Preprocess) and record["image_processor"] == cls_name


def test_a_tensor_path_that_differs_is_never_used(monkeypatch):
    """If a rule were wrong, the check catches it: the processor runs instead."""
    from evaluator.model import processor_check

    def off_by_a_little(processor, protocol):
        pre = from_image_processor(processor, protocol)
        return Preprocess(
            mean=pre.mean,
            std=tuple(s * 1.001 for s in pre.std),
            input_size=pre.input_size,
            protocol=protocol,
            resample=pre.resample,
            steps=pre.steps,
        )

    monkeypatch.setattr(processor_check, "from_image_processor", off_by_a_little)
    processor = _processor(*HUB_PROCESSORS[0][1:])
    pre, record = processor_check.checked_preprocess(processor, "processor")
    assert isinstance(pre, ProcessorPreprocess) and record["path"] == "processor"
    assert 1e-5 < record["max_abs_diff"] < 1e-2 and "differs" in record["reason"]


def test_the_fallback_keeps_device_layout_and_a_stable_cache_key():
    processor = _processor(*HUB_PROCESSORS[0][1:])
    pre = ProcessorPreprocess(processor, "processor")
    assert pre.input_size == (224, 224)
    nhwc = torch.from_numpy(_images(2, 224, 224, seed=7))
    out = pre(nhwc.permute(0, 3, 1, 2))  # a channels-last view
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, _reference(processor, nhwc.numpy()))
    assert repr(pre) == repr(ProcessorPreprocess(_processor(*HUB_PROCESSORS[0][1:]), "processor"))
    other = _processor(HUB_PROCESSORS[0][1], {**HUB_PROCESSORS[0][2], "crop_pct": 0.9})
    assert repr(pre) != repr(ProcessorPreprocess(other, "processor"))


def test_load_model_records_which_path_ran(tiny_models):
    from evaluator.model.loading import load_model

    for protocol in ("paper", "processor"):
        record = load_model(str(tiny_models["in9"]), protocol=protocol).record["preprocessing"]
        assert record["path"] == "tensor" and record["image_processor"] == "ConvNextImageProcessorPil"
        assert record["checked_images"] == len(CHECK_SHAPES) and record["max_abs_diff"] <= 1e-5


@pytest.mark.parametrize("family", ["mobilevit-small", "efficientnet-b0", "levit-128S", "perceiver"])
def test_a_model_scores_through_its_own_processor_under_both_protocols(tiny_models, tmp_path, family):
    """A checkpoint with another family's preprocessor_config.json, loaded as a user loads it: its class
    scores equal an independent forward through the processor itself."""
    import shutil

    from evaluator.model.loading import load_model

    folder = tmp_path / family
    shutil.copytree(tiny_models["in9"], folder)
    _, cls_name, config = {h[0]: h for h in HUB_PROCESSORS}[family]
    processor = _processor(cls_name, config)
    processor.save_pretrained(folder)
    images = _images(3, 224, 224, seed=8)
    for protocol in ("paper", "processor"):
        loaded = load_model(str(folder), protocol=protocol)
        assert loaded.record["preprocessing"]["path"] == "tensor"
        overrides = {"do_resize": False, "do_center_crop": False} if protocol == "paper" else {}
        size = loaded.preprocess.input_size
        if protocol == "paper" and size != (224, 224):  # paper: resized to the model's input size first
            resized = [
                np.asarray(Image.fromarray(i).resize(size[::-1], loaded.preprocess.resample)) for i in images
            ]
            pixels = _reference(processor, resized, **overrides)
        else:
            pixels = _reference(processor, images, **overrides)
        with torch.inference_mode():
            ours = loaded.model(loaded.preprocess(_batch(images)))
            ref = loaded.model(pixels)
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
        assert torch.equal(ours.argmax(1), ref.argmax(1))
