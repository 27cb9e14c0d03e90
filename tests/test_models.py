"""Model loading: local folders, Hub ids offline, clear errors, bare modules."""

import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from evaluator.demo.train_tiny import save_random_tiny_resnet, tiny_resnet_config
from evaluator.model.classifier import check_has_head, load_classifier_module
from evaluator.model.loading import load_model, wrap_module
from in9_builder.classes import CLASS_NAMES
from in9_builder.errors import In9Error


def test_local_imagenet_model(tiny_models):
    loaded = load_model(str(tiny_models["in1k"]))
    assert loaded.label_space.kind == "imagenet-1k"
    assert (loaded.num_labels, loaded.num_params) == (1000, 438_456)
    assert loaded.revision is None and loaded.source == "local"
    assert not loaded.model.training
    x = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    with torch.inference_mode():
        logits = loaded.model(loaded.preprocess(x))
        direct = loaded.model.model(pixel_values=loaded.preprocess(x)).logits
    assert logits.shape == (2, 1000)
    assert torch.equal(logits, direct)


def test_local_nine_way_model_and_protocols(tiny_models):
    paper = load_model(str(tiny_models["in9"]))
    assert paper.label_space.kind == "in9" and paper.num_labels == 9
    assert paper.preprocess.protocol == "paper" and paper.preprocess.input_size == (224, 224)
    proc = load_model(str(tiny_models["in9"]), protocol="processor")
    assert proc.preprocess.crop == (224, 224) and proc.preprocess.resize.shortest_edge == 256


def test_revision_with_a_local_folder_is_refused(tiny_models):
    with pytest.raises(In9Error, match="revision='main'.*local folder"):
        load_model(str(tiny_models["in9"]), revision="main")


def test_unknown_hub_id_offline_says_offline():
    with pytest.raises(In9Error, match=r"'nobody/no-such-model'.*offline \(HF_HUB_OFFLINE=1\)"):
        load_model("nobody/no-such-model")


def test_not_an_image_classifier(tmp_path):
    from transformers import BertConfig

    BertConfig(
        hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8
    ).save_pretrained(tmp_path)
    with pytest.raises(In9Error, match="not an image classifier \\(model_type 'bert'"):
        load_model(str(tmp_path))


def test_folder_without_config(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(In9Error, match=r"no config.json \(found model.onnx\); pass a transformers model"):
        load_model(str(tmp_path))


def test_unmappable_labels_then_label_map(tmp_path):
    folder = save_random_tiny_resnet(tmp_path / "m", [f"LABEL_{i}" for i in range(4)])
    with pytest.raises(In9Error, match=r"found 4 labels \('LABEL_0'.*label_map=FILE"):
        load_model(str(folder))
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({"LABEL_0": 3, "1": 0}))
    loaded = load_model(str(folder), label_map=label_map)
    assert loaded.label_space.kind == "label-map"
    assert loaded.label_space.to_in9.tolist() == [3, 0, -1, -1]


def test_pickle_weights_need_allow_pickle(tmp_path, tiny_models):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(tiny_models["in9"])
    folder = tmp_path / "pickled"
    model.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    AutoImageProcessor.from_pretrained(tiny_models["in9"], backend="pil").save_pretrained(folder)
    with pytest.raises(In9Error, match="only pickle weights .*allow_pickle=True"):
        load_model(str(folder))
    assert load_model(str(folder), allow_pickle=True).num_labels == 9


def test_missing_image_processor_config(tmp_path, tiny_models):
    from transformers import AutoModelForImageClassification

    AutoModelForImageClassification.from_pretrained(tiny_models["in9"]).save_pretrained(tmp_path)
    with pytest.raises(In9Error, match="no preprocessor_config.json"):
        load_model(str(tmp_path))


def test_wrap_module():
    module = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 9))
    loaded = wrap_module(module, mean=(0.5,) * 3, std=(0.25,) * 3, id2label=dict(enumerate(CLASS_NAMES)))
    assert loaded.label_space.kind == "in9" and loaded.num_params == 36 and loaded.source == "module"
    x = torch.full((1, 3, 224, 224), 255, dtype=torch.uint8)
    assert loaded.preprocess(x).flatten()[0].item() == pytest.approx(2.0)
    assert loaded.model(loaded.preprocess(x)).shape == (1, 9)
    with pytest.raises(In9Error, match="exactly one of id2label= or label_space="):
        wrap_module(module, mean=(0.5,) * 3, std=(0.25,) * 3)


def _fake_hub_cache(cache, repo_id: str, sha: str, source) -> None:
    """The huggingface_hub cache layout of one downloaded revision (what a previous online run leaves)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(source, repo / "snapshots" / sha)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)


def test_hub_id_from_the_cache_records_the_commit_sha(tiny_models, tmp_path, monkeypatch):
    from huggingface_hub import constants

    sha = "0123456789abcdef0123456789abcdef01234567"
    _fake_hub_cache(tmp_path, "someorg/tiny-in9", sha, tiny_models["in9"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    loaded = load_model("someorg/tiny-in9")
    assert (loaded.model_id, loaded.revision, loaded.source) == ("someorg/tiny-in9", sha, "hub")
    assert load_model("someorg/tiny-in9", revision=sha).revision == sha
    with pytest.raises(In9Error, match=r"'someorg/tiny-in9' at revision 'v2'.*offline"):
        load_model("someorg/tiny-in9", revision="v2")


# --- never a random head; bad input named in one line ---


def _tiny_vit_config(**kwargs):
    from transformers import ViTConfig

    return ViTConfig(
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        image_size=32,
        patch_size=16,
        **kwargs,
    )


def _save_vit_base_model(folder):
    """A ViT saved as a base model (ViTModel: no classifier weights), as google/vit-*-in21k is."""
    from transformers import ViTImageProcessorPil, ViTModel

    torch.manual_seed(0)
    ViTModel(_tiny_vit_config(id2label=dict(enumerate(CLASS_NAMES)))).save_pretrained(folder)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def _edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config))


HEADLESS_VIT = (
    "ViTModel (a vision base model, model_type 'vit') has no image-classification head; scoring it would "
    "use a newly initialised, random classification head. Pass a checkpoint fine-tuned for image "
    "classification (config.json architectures ending in ForImageClassification)"
)


def test_base_model_checkpoint_is_refused_even_with_imagenet_labels_or_a_label_map(tmp_path):
    folder = _save_vit_base_model(tmp_path / "vit-base")
    with pytest.raises(In9Error) as err:
        load_model(str(folder))
    assert str(err.value) == f"model={folder}: {HEADLESS_VIT}"
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({"0": 0}))
    with pytest.raises(In9Error, match="has no image-classification head"):
        load_model(str(folder), label_map=label_map)


def test_missing_head_weights_are_refused_when_architectures_claims_a_classifier(tmp_path):
    folder = _save_vit_base_model(tmp_path / "vit-base")
    for architectures in (["ViTForImageClassification"], None):
        _edit_config(folder, architectures=architectures)
        with pytest.raises(In9Error) as err:
            load_model(str(folder))
        assert str(err.value) == (
            f"model={folder}: the checkpoint has no classification-head weights (classifier.bias, "
            "classifier.weight missing), so ViTForImageClassification would get a newly initialised, random "
            "head: it holds a base model only. Pass a checkpoint fine-tuned for image classification (or, "
            "for a CLIP-like model, score it zero-shot)"
        )


def test_clip_checkpoint_reaching_the_classifier_kind_is_refused_pointing_to_zero_shot(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    tower = dict(hidden_size=8, intermediate_size=8, num_attention_heads=1, num_hidden_layers=1)
    config = CLIPConfig(
        text_config={**tower, "vocab_size": 64},
        vision_config={**tower, "image_size": 32, "patch_size": 16},
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(tmp_path)
    config = CLIPModel.config_class.from_pretrained(tmp_path)
    with pytest.raises(In9Error) as err:
        load_classifier_module(tmp_path, "org/clip", config, trust_remote_code=False, allow_pickle=False)
    assert str(err.value) == (
        "model=org/clip: CLIPModel (a CLIP-like image-text model, model_type 'clip') has no "
        "image-classification head; scoring it would use a newly initialised, random classification head. "
        "Score a CLIP-like model zero-shot (the full image-text checkpoint, whose text tower names the "
        "classes), or pass a checkpoint fine-tuned for image classification"
    )


def test_head_that_does_not_fit_its_labels_is_refused(tmp_path):
    folder = save_random_tiny_resnet(tmp_path / "m", CLASS_NAMES)
    _edit_config(folder, id2label={str(i): f"LABEL_{i}" for i in range(12)}, label2id=None)
    with pytest.raises(In9Error) as err:
        load_model(str(folder))
    assert str(err.value) == (
        f"model={folder}: the checkpoint's classifier.1.bias has shape (9,) but its config.json (12 labels "
        "in id2label) builds (12,), which transformers would initialise at random; make config.json's "
        "id2label list the head's labels"
    )


def test_gapped_id2label_loads_with_one_entry_per_logit(tmp_path):
    from transformers import ResNetForImageClassification

    config = tiny_resnet_config(["a", "b", "c"])
    config.id2label = {0: "n01440764", 2: "n02085620", 5: "n01530575"}  # tench, Chihuahua, brambling
    config.label2id = {v: k for k, v in config.id2label.items()}
    folder = save_random_tiny_resnet(tmp_path / "m", ["a", "b", "c"])
    ResNetForImageClassification(config).save_pretrained(folder)
    loaded = load_model(str(folder))
    assert (loaded.label_space.kind, loaded.num_labels) == ("wnid", 3)
    assert loaded.label_space.to_in9.tolist() == [8, 0, 1]
    x = torch.zeros(1, 3, 224, 224, dtype=torch.uint8)
    assert loaded.model(loaded.preprocess(x)).shape == (1, 3)


def test_detection_model_is_named_for_what_it_is(tmp_path):
    from transformers import YolosConfig

    config = YolosConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)
    config.architectures = ["YolosForObjectDetection"]
    config.save_pretrained(tmp_path)
    with pytest.raises(In9Error) as err:
        load_model(str(tmp_path))
    assert str(err.value) == (
        f"model={tmp_path}: not an image classifier (model_type 'yolos', architectures: "
        "YolosForObjectDetection: an object-detection model); pass a checkpoint fine-tuned for image "
        "classification (one that AutoModelForImageClassification loads)"
    )


def test_repository_without_weights_names_what_it_holds(tmp_path):
    folder = save_random_tiny_resnet(tmp_path / "m", CLASS_NAMES)
    (folder / "model.safetensors").unlink()
    (folder / "README.md").write_text("# a model card")
    with pytest.raises(In9Error) as err:
        load_model(str(folder))
    assert str(err.value) == (
        f"model={folder}: no weights: found README.md, config.json, preprocessor_config.json, but no "
        "model.safetensors (or *.bin with allow_pickle=True); pass a repository or folder that holds the "
        "model's weights"
    )


def test_unreadable_config_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(In9Error, match=r"unreadable config.json") as err:
        load_model(str(tmp_path))
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_cli_refuses_a_headless_checkpoint_in_one_line_and_writes_nothing(tmp_path):
    folder = _save_vit_base_model(tmp_path / "vit-base")
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "evaluator.cli",
            "--model",
            str(folder),
            "--data",
            "synthetic:per_class=1",
            "--output-dir",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: --model {folder}: {HEADLESS_VIT}"]
    assert not out.exists()


@pytest.mark.parametrize(
    ("model_type", "architecture", "what"),
    [
        ("dinov2", "Dinov2Model", "a vision base model"),
        ("siglip", "SiglipModel", "a CLIP-like image-text model"),
        ("beit", "BeitForMaskedImageModeling", "a masked-image-modeling model"),
        ("vit_mae", "ViTMAEForPreTraining", "a pretraining model"),
    ],
)
def test_architectures_without_a_classification_head_are_refused_before_loading(
    model_type, architecture, what
):
    config = SimpleNamespace(model_type=model_type, architectures=[architecture])
    with pytest.raises(
        In9Error, match=rf"^model=org/x: {architecture} \({what}, model_type '{model_type}'\) "
    ):
        check_has_head("org/x", config)


@pytest.mark.parametrize(
    "architecture",
    ["ViTForImageClassification", "DeiTForImageClassificationWithTeacher", "MyNetForImageClassification"],
)
def test_classification_heads_pass_the_architecture_check(architecture):
    check_has_head("org/x", SimpleNamespace(model_type="vit", architectures=[architecture]))


def test_text_model_is_named_for_what_it_is(tmp_path):
    from transformers import BertConfig

    config = BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)
    config.architectures = ["BertForMaskedLM"]
    config.save_pretrained(tmp_path)
    with pytest.raises(In9Error) as err:
        load_model(str(tmp_path))
    assert str(err.value) == (
        f"model={tmp_path}: not an image classifier (model_type 'bert', architectures: BertForMaskedLM: a "
        "text model (masked language model)); pass a checkpoint fine-tuned for image classification (one "
        "that AutoModelForImageClassification loads)"
    )


def test_hub_repository_without_weights_is_named(tiny_models, tmp_path, monkeypatch):
    from huggingface_hub import constants

    source = tmp_path / "source"
    shutil.copytree(tiny_models["in9"], source)
    (source / "model.safetensors").unlink()
    _fake_hub_cache(tmp_path / "hub", "someorg/no-weights", "f" * 40, source)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(In9Error) as err:
        load_model("someorg/no-weights")
    assert str(err.value) == (
        "model=someorg/no-weights: no weights: found config.json, preprocessor_config.json, but no "
        "model.safetensors (or *.bin with allow_pickle=True); pass a repository or folder that holds the "
        "model's weights"
    )


def test_clip_vision_tower_alone_is_refused_pointing_to_zero_shot(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    config = CLIPVisionConfig(
        hidden_size=8,
        intermediate_size=8,
        num_attention_heads=1,
        num_hidden_layers=1,
        image_size=32,
        patch_size=16,
    )
    CLIPVisionModel(config).save_pretrained(tmp_path)
    with pytest.raises(In9Error) as err:
        load_model(str(tmp_path))
    assert str(err.value).startswith(
        f"model={tmp_path}: CLIPVisionModel (a base model, model_type 'clip_vision_model') has no "
        "image-classification head; scoring it would use a newly initialised, random classification head. "
        "Score a CLIP-like model zero-shot"
    )
