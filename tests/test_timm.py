"""timm repositories (the ``timm`` kind): loaded offline from Hub caches rebuilt as the Hub stores them,
scored against timm itself: its eval transform (resolve_data_config + create_transform on PIL images) and its
forward (``timm.create_model("hf-hub:...")`` from the same cache).

The repositories are written by timm's own ``save_for_hf`` (what ``push_to_hub`` uploads: config.json with
architecture, num_classes, num_features, global_pool, pretrained_cfg, label_names where present, and
model.safetensors) from ``timm.create_model(<name>.<tag>, **model_args)``: the tag's pretrained_cfg as timm
ships it, random weights of a shrunken model (``model_args``, recorded in config.json as timm records them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evaluator.model import timm_repo
from evaluator.model.loading import load_model
from in9_builder.classes import IN1K_TO_IN9, imagenet1k_wnids
from in9_builder.errors import In9Error

ROOT = Path(__file__).resolve().parents[1]
SHA = "1111111111111111111111111111111111111111"

# repo id -> (timm model name with its pretrained tag, model_args that shrink it, config extras)
REPOS = {
    # crop_pct 0.95, test_input_size 288, bicubic, center; no label_names: the ImageNet-1k default
    "timm/resnet50.a1_in1k": ("resnet50.a1_in1k", {"layers": [1, 1, 1, 1]}, {}),
    # crop_pct 0.9, mean/std 0.5; label_names = the 1000 WordNet ids (+ label_descriptions)
    "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k": (
        "vit_base_patch16_224.augreg2_in21k_ft_in1k",
        {"depth": 1, "embed_dim": 48, "num_heads": 2},
        {"wnids": True},
    ),
    # crop_pct 0.95, test_input_size 288; label_names as WordNet ids; config.json as timm 1.0.31 exports it
    "timm/convnext_tiny.in12k_ft_in1k": (
        "convnext_tiny.in12k_ft_in1k",
        {"depths": [1, 1, 1, 1], "dims": [16, 32, 48, 64]},
        {"wnids": True, "timm_1_0_31_export": True},
    ),
    # 336 input, crop_pct 1.0, OpenAI CLIP mean/std
    "timm/eva02_tiny_patch14_336.mim_in22k_ft_in1k": (
        "eva02_tiny_patch14_336.mim_in22k_ft_in1k",
        {"depth": 1, "embed_dim": 48, "num_heads": 2},
        {},
    ),
    # 384 input, crop_pct 1.0, crop_mode squash
    "timm/convnext_tiny.fb_in22k_ft_in1k_384": (
        "convnext_tiny.fb_in22k_ft_in1k_384",
        {"depths": [1, 1, 1, 1], "dims": [8, 16, 24, 32]},
        {},
    ),
}


def _timm():
    """timm, or a failure that says how to get it: these tests never skip (CI installs timm)."""
    try:
        import timm
    except Exception as exc:  # noqa: BLE001 - a broken torchvision raises RuntimeError
        pytest.fail(f"timm is not importable ({type(exc).__name__}: {exc}); run bash scripts/install-timm.sh")
    return timm


def _write_repo(folder: Path, name: str, model_args: dict, extras: dict) -> Path:
    timm = _timm()
    from timm.models._hub import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **model_args).eval()
    with torch.no_grad():  # BatchNorm statistics that are not 0/1, so that eval mode matters
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    model_config = {}
    if extras.get("wnids"):
        wnids = imagenet1k_wnids()
        model_config = {"label_names": wnids, "label_descriptions": {w: f"class {w}" for w in wnids}}
    folder.mkdir(parents=True)
    save_for_hf(model, str(folder), model_config=model_config, model_args=model_args, safe_serialization=True)
    if not extras.get("timm_1_0_31_export"):
        # The Hub's repositories were exported by earlier timm releases, which wrote model_args only when
        # given
        # (timm 1.0.31 also records in_chans, num_classes and global_pool there).
        raw = json.loads((folder / "config.json").read_text())
        raw["model_args"] = model_args
        (folder / "config.json").write_text(json.dumps(raw, indent=2))
    return folder


def _cache(root: Path, repo_id: str) -> Path:
    """The huggingface_hub cache layout of one downloaded revision of ``repo_id``."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(SHA)
    return repo / "snapshots" / SHA


@pytest.fixture(scope="session")
def timm_hub(tmp_path_factory) -> Path:
    """A Hub cache with the repositories of REPOS."""
    root = tmp_path_factory.mktemp("timm_hub")
    for repo_id, (name, model_args, extras) in REPOS.items():
        _write_repo(_cache(root, repo_id), name, model_args, extras)
    return root


@pytest.fixture
def hub(timm_hub, monkeypatch) -> Path:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(timm_hub))
    return timm_hub


def _folder(timm_hub: Path, repo_id: str) -> Path:
    return timm_hub / f"models--{repo_id.replace('/', '--')}" / "snapshots" / SHA


def _images() -> list[Image.Image]:
    """IN-9's 224 x 224, and other shapes (landscape, portrait, small, odd) that exercise resize and crop."""
    rng = np.random.default_rng(0)
    shapes = [(224, 224), (224, 224), (160, 240), (300, 201), (57, 64), (333, 333)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in shapes]


def _uint8(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).unsqueeze(0)


def _timm_transform(pretrained_cfg: dict):
    """timm's eval transform for a pretrained_cfg, as a timm user builds it."""
    timm = _timm()
    config = timm.data.resolve_data_config({}, pretrained_cfg=pretrained_cfg)
    return timm.data.create_transform(**config, is_training=False), config


def _timm_model(repo_id: str):
    """timm's own model from the Hub cache, as a model card says (no transformers, none of our parsing)."""
    return _timm().create_model(f"hf-hub:{repo_id}", pretrained=True).eval()


@pytest.mark.parametrize("repo_id", list(REPOS))
def test_timm_repo_loads_offline_with_its_label_space_and_preprocessing(hub, repo_id):
    loaded = load_model(repo_id, protocol="processor")
    raw = json.loads((_folder(hub, repo_id) / "config.json").read_text())
    assert timm_repo.is_timm_repo(raw) and "model_type" not in raw
    assert (loaded.model_id, loaded.revision, loaded.source) == (repo_id, SHA, "hub")
    assert loaded.label_space.kind == "imagenet-1k" and np.array_equal(loaded.label_space.to_in9, IN1K_TO_IN9)
    assert loaded.num_labels == 1000 and loaded.record["kind"] == "timm"
    assert loaded.record["architecture"] == raw["architecture"]
    # The resolved settings are timm's own for this pretrained_cfg.
    _, config = _timm_transform(raw["pretrained_cfg"])
    spec = loaded.preprocess.spec
    assert spec.data_config() == {
        "input_size": tuple(config["input_size"]),
        "interpolation": config["interpolation"],
        "mean": tuple(config["mean"]),
        "std": tuple(config["std"]),
        "crop_pct": config["crop_pct"],
        "crop_mode": config["crop_mode"],
    }


@pytest.mark.parametrize("repo_id", list(REPOS))
def test_processor_preprocessing_equals_timms_eval_transform(hub, repo_id):
    loaded = load_model(repo_id, protocol="processor")
    assert loaded.record["preprocessing"]["path"] == "tensor"
    assert isinstance(loaded.preprocess, timm_repo.TimmPreprocess)  # batched, whatever the image shape
    transform, _ = _timm_transform(
        json.loads((_folder(hub, repo_id) / "config.json").read_text())["pretrained_cfg"]
    )
    for image in _images():
        ours = loaded.preprocess(_uint8(image))[0]
        theirs = transform(image)
        assert ours.shape == theirs.shape, image.size
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0, msg=f"image {image.size}")


@pytest.mark.parametrize("repo_id", list(REPOS))
def test_paper_preprocessing_is_mean_std_at_the_models_input_size(hub, repo_id):
    timm = _timm()
    loaded = load_model(repo_id, protocol="paper")
    _, config = _timm_transform(
        json.loads((_folder(hub, repo_id) / "config.json").read_text())["pretrained_cfg"]
    )
    size = tuple(config["input_size"][1:])
    from torchvision import transforms

    reference = transforms.Compose(
        [
            transforms.Resize(
                size, interpolation=timm.data.transforms.str_to_interp_mode(config["interpolation"])
            ),
            transforms.ToTensor(),
            transforms.Normalize(config["mean"], config["std"]),
        ]
    )
    image = _images()[0]  # 224 x 224, as IN-9
    torch.testing.assert_close(loaded.preprocess(_uint8(image))[0], reference(image), atol=1e-5, rtol=0)
    if size == (224, 224):  # no resize at all: the original code's ToTensor + Normalize
        plain = transforms.Normalize(config["mean"], config["std"])(transforms.ToTensor()(image))
        torch.testing.assert_close(loaded.preprocess(_uint8(image))[0], plain, atol=1e-6, rtol=0)


@pytest.mark.parametrize("repo_id", list(REPOS))
def test_logits_equal_timms_own_forward(hub, repo_id):
    loaded = load_model(repo_id, protocol="processor")
    reference = _timm_model(repo_id)
    timm = _timm()
    transform = timm.data.create_transform(
        **timm.data.resolve_model_data_config(reference), is_training=False
    )
    images = _images()[:3]
    batch = torch.cat([_uint8(images[0]), _uint8(images[1])])
    with torch.inference_mode():
        ours = loaded.model(loaded.preprocess(batch))
        theirs = reference(torch.stack([transform(images[0]), transform(images[1])]))
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))


@pytest.mark.parametrize(
    ("overrides", "size"),
    [
        ({"crop_mode": "border", "crop_pct": 0.9}, (224, 224)),
        ({"crop_mode": "border", "crop_pct": 1.0, "input_size": [3, 192, 256]}, (192, 256)),
        ({"crop_mode": "squash", "crop_pct": 0.8, "interpolation": "bilinear"}, (224, 224)),
        ({"crop_mode": "center", "input_size": [3, 160, 224], "crop_pct": 0.9}, (160, 224)),
        ({"crop_mode": "center", "interpolation": "lanczos", "crop_pct": 1.15}, (224, 224)),
        ({"interpolation": "nearest", "mean": [0.0], "std": [1.0]}, (224, 224)),
    ],
)
def test_every_crop_mode_equals_timms_transform(overrides, size):
    cfg = {"input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": "center"}
    cfg.update(overrides)
    transform, _ = _timm_transform(cfg)
    pre, path = timm_repo.checked_preprocess(timm_repo.eval_config(cfg), "processor", _timm())
    assert path == "tensor"  # the tensor path reproduces every mode, so the load-time check keeps it
    for image in _images():
        theirs = transform(image)
        ours = pre(_uint8(image))[0]
        assert tuple(ours.shape[-2:]) == size == tuple(theirs.shape[-2:])
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0, msg=f"image {image.size}")


def test_preprocess_repr_names_every_setting_so_the_cache_key_changes(hub):
    a = load_model("timm/resnet50.a1_in1k", protocol="processor").preprocess
    b = load_model("timm/convnext_tiny.fb_in22k_ft_in1k_384", protocol="processor").preprocess
    assert "crop_pct=0.95" in repr(a) and "crop_mode='squash'" in repr(b) and repr(a) != repr(b)


def _edited(timm_hub: Path, tmp_path: Path, repo_id: str, **changes) -> Path:
    import shutil

    folder = tmp_path / "edited"
    shutil.copytree(_folder(timm_hub, repo_id), folder)
    raw = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    (folder / "config.json").write_text(json.dumps(raw))
    return folder


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"architecture": None}, "has a pretrained_cfg (a timm model) but no architecture"),
        ({"num_classes": 0}, "num_classes=0: a feature backbone without a classifier head"),
        ({"label_names": ["a", "b"]}, "has 2 label_names for num_classes=1000"),
        ({"model_args": {"layers": [2, 1, 1, 1]}}, "the weights do not fit timm architecture 'resnet50'"),
        (
            {"pretrained_cfg": {"input_size": [3, 224, 224], "crop_mode": "letterbox"}},
            "crop_mode='letterbox'",
        ),
        ({"pretrained_cfg": {"input_size": [1, 224, 224]}}, "the model takes 1 channels"),
    ],
)
def test_bad_timm_configs_are_one_line_errors(timm_hub, tmp_path, changes, message):
    folder = _edited(timm_hub, tmp_path, "timm/resnet50.a1_in1k", **changes)
    with pytest.raises(In9Error, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_model(str(folder), protocol="processor")


def test_a_head_that_is_not_imagenet_needs_a_label_map(timm_hub, tmp_path):
    names = [f"species {i}" for i in range(1000)]
    folder = _edited(timm_hub, tmp_path, "timm/resnet50.a1_in1k", label_names=names)
    with pytest.raises(In9Error, match="cannot map the model's label space to IN-9"):
        load_model(str(folder))
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({"species 3": 0, "7": 8}))
    loaded = load_model(str(folder), label_map=label_map)
    assert loaded.label_space.kind == "label-map" and loaded.label_space.to_in9[[3, 7]].tolist() == [0, 8]


def test_missing_timm_is_one_line_naming_the_install(timm_hub, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` now raises ImportError
    with pytest.raises(In9Error) as error:
        load_model(str(_folder(timm_hub, "timm/resnet50.a1_in1k")))
    message = str(error.value)
    assert "\n" not in message and "pip install timm torchvision" in message and "'resnet50'" in message


BLOCK_TIMM = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "timm":
            raise ImportError(f"No module named {name!r} (blocked by the test)")
sys.meta_path.insert(0, Block())
from evaluator.cli.eval import main
sys.exit(main(sys.argv[1:]))
"""


def _env(timm_hub: Path) -> dict:
    return {**os.environ, "HF_HUB_CACHE": str(timm_hub), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_cli_without_timm_exits_2_with_one_line(timm_hub, synthetic_export, tmp_path):
    args = [
        "--model",
        "timm/resnet50.a1_in1k",
        "--data",
        str(synthetic_export),
        "--output-dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TIMM, *args], capture_output=True, text=True, env=_env(timm_hub)
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("error: --model timm/resnet50.a1_in1k: a timm model (architecture 'resnet50')")
    assert "pip install timm torchvision" in lines[0]


def _reference(repo_id: str, export: Path, variant: str, image_ids, protocol: str):
    """Per-image IN-9 class scores from timm alone: its transform (or ToTensor + Normalize at the input size
    for ``paper``), its forward, softmax, summed over the ImageNet classes of each IN-9 class."""
    from datasets import load_dataset
    from torchvision import transforms

    timm = _timm()
    model = _timm_model(repo_id)
    config = timm.data.resolve_data_config({}, pretrained_cfg=model.pretrained_cfg)
    if protocol == "processor":
        transform = timm.data.create_transform(**config, is_training=False)
    else:
        transform = transforms.Compose(
            [
                transforms.Resize(
                    config["input_size"][1:],
                    interpolation=timm.data.transforms.str_to_interp_mode(config["interpolation"]),
                ),
                transforms.ToTensor(),
                transforms.Normalize(config["mean"], config["std"]),
            ]
        )
    files = [str(p) for p in sorted((export / variant).glob("test-*.parquet"))]
    rows = {r["image_id"]: r["image"] for r in load_dataset("parquet", data_files=files, split="train")}
    batch = torch.stack([transform(rows[i].convert("RGB")) for i in image_ids])
    with torch.inference_mode():
        logits = model(batch)
    probs = logits.softmax(1).numpy()
    scores = np.zeros((len(image_ids), 9))
    for k in range(9):
        scores[:, k] = probs[:, IN1K_TO_IN9 == k].sum(1)
    return scores, logits.argmax(1).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["processor", "paper"])
def test_in9_eval_end_to_end_scores_equal_timms_forward(hub, synthetic_export, tmp_path, protocol):
    import pyarrow.parquet as pq

    repo_id = "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k"
    out = tmp_path / "out"
    args = [
        "-m",
        "evaluator.cli",
        "--model",
        repo_id,
        "--data",
        str(synthetic_export),
        "--variants",
        "original,mixed_rand",
        "--limit",
        "2",
        "--preprocess",
        protocol,
        "--output-dir",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=_env(hub))
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["model"]["revision"] == SHA and doc["model"]["label_space"] == "imagenet-1k"
    assert doc["model"]["kind"] == "timm" and doc["protocol"]["preprocess"] == protocol
    table = pq.read_table(out / "predictions.parquet").to_pylist()
    for variant in ("original", "mixed_rand"):
        rows = [r for r in table if r["variant"] == variant]
        expected, top1 = _reference(
            repo_id, synthetic_export, variant, [r["image_id"] for r in rows], protocol
        )
        got = np.array([r["scores"] for r in rows])
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
        assert [r["raw_top1"] for r in rows] == top1.tolist()
        assert [r["prediction"] for r in rows] == IN1K_TO_IN9[top1].tolist()


def test_a_tensor_path_that_differs_from_timm_falls_back_to_timms_transform(hub, monkeypatch):
    real = timm_repo.TimmPreprocess.geometry

    def off_by_one_row(self, images):
        out = real(self, images)
        return out if self.protocol == "paper" else torch.roll(out, 1, dims=-2)

    monkeypatch.setattr(timm_repo.TimmPreprocess, "geometry", off_by_one_row)
    loaded = load_model("timm/resnet50.a1_in1k", protocol="processor")
    assert loaded.record["preprocessing"]["path"] == "timm transform per image"
    raw = json.loads((_folder(hub, "timm/resnet50.a1_in1k") / "config.json").read_text())
    transform, _ = _timm_transform(raw["pretrained_cfg"])
    images = _images()
    batch = _uint8(images[0]).contiguous(memory_format=torch.channels_last)
    out = loaded.preprocess(batch)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out[0], transform(images[0]), atol=0, rtol=0)
    assert load_model("timm/resnet50.a1_in1k", protocol="paper").record["preprocessing"]["path"] == "tensor"


def test_model_args_img_size_sets_a_fixed_size_models_input(tmp_path):
    """As timm reads a Hub config: a fixed-size model built at model_args img_size takes that size."""
    timm = _timm()
    args = {"depth": 1, "embed_dim": 48, "num_heads": 2, "img_size": 160}
    folder = _write_repo(tmp_path / "vit160", "vit_base_patch16_224.augreg2_in21k_ft_in1k", args, {})
    loaded = load_model(str(folder), protocol="processor")
    reference = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    config = timm.data.resolve_model_data_config(reference)
    assert loaded.preprocess.spec.input_size == tuple(config["input_size"][1:]) == (160, 160)
    image = _images()[0]
    x = timm.data.create_transform(**config, is_training=False)(image)[None]
    torch.testing.assert_close(loaded.preprocess(_uint8(image)), x, atol=1e-5, rtol=0)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.model(x), reference(x), atol=1e-4, rtol=1e-4)
