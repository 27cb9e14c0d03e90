"""Model loading: local folders, Hub ids offline, clear errors, bare modules."""

import json

import pytest
import torch

from evaluator.demo.train_tiny import save_random_tiny_resnet
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
    with pytest.raises(In9Error, match="has no config.json"):
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
    import shutil

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
