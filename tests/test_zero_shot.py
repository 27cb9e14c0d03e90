"""Zero-shot vision-language models (CLIP, SigLIP): a classifier built from prompts, checked against an
independent forward built by hand from the model's own get_text_features / get_image_features."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from evaluator.api import evaluate
from evaluator.cli.eval import main
from evaluator.data import open_data
from evaluator.model import zero_shot
from evaluator.model.loading import load_model
from in9_builder.classes import CLASS_NAMES, IN1K_TO_IN9
from in9_builder.errors import In9Error
from tests.fixtures_builder import make_synthetic_export
from tests.fixtures_evaluator import IN9_SPELLINGS

# As openai/clip-vit-base-patch32 and google/siglip-base-patch16-224 store them on the Hub.
CLIP_PREPROCESSOR = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}
SIGLIP_PREPROCESSOR = {
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_processor_type": "SiglipImageProcessor",
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "SiglipProcessor",
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": 224, "width": 224},
}
PACKAGED = json.loads((Path(zero_shot.__file__).parent / "prompts" / "clip_imagenet1k.json").read_text())
TINY = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2)


def _char_tokenizer():
    """A byte-level CLIP BPE tokenizer without merges (one token per character), built offline."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab.update({ch + "</w>": len(alphabet) + i for i, ch in enumerate(alphabet)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    return CLIPTokenizer(vocab=vocab, merges=[])


def _save(folder: Path, model, tokenizer, preprocessor: dict) -> Path:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    return folder


@pytest.fixture(scope="module")
def zs_models(tmp_path_factory) -> dict[str, Path]:
    from transformers import CLIPConfig, CLIPModel, SiglipConfig, SiglipModel

    root = tmp_path_factory.mktemp("zero_shot_models")
    tok = _char_tokenizer()
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    clip = CLIPModel(
        CLIPConfig(
            text_config=dict(vocab_size=len(tok), max_position_embeddings=77, **ids, **TINY),
            vision_config=dict(image_size=224, patch_size=32, **TINY),
            projection_dim=16,
        )
    )
    torch.manual_seed(1)
    siglip = SiglipModel(
        SiglipConfig(
            text_config=dict(vocab_size=len(tok), max_position_embeddings=64, **ids, **TINY),
            vision_config=dict(image_size=224, patch_size=32, **TINY),
        )
    )
    with torch.no_grad():  # SigLIP's released values; a non-zero bias shows up in the logits
        siglip.logit_scale.fill_(math.log(10.0))
        siglip.logit_bias.fill_(-10.0)
    return {
        "clip": _save(root / "tiny-clip", clip, tok, CLIP_PREPROCESSOR),
        "siglip": _save(root / "tiny-siglip", siglip, tok, SIGLIP_PREPROCESSOR),
    }


@pytest.fixture(scope="module")
def zs_data(tmp_path_factory) -> Path:
    return make_synthetic_export(
        tmp_path_factory.mktemp("zero_shot_data"), per_class=2, size=224, train_per_class=0
    )


# ------------------------------------------------------------------------- the independent reference


def _reference_classifier(model, tokenizer, classnames, templates, *, siglip: bool) -> torch.Tensor:
    """CLIP_benchmark's zero_shot_classifier on the transformers model: texts class-major, in plain chunks
    (a class at a time is the same arithmetic, but 1000 forwards are slow on a shared CPU)."""
    texts = [template.format(c=name) for name in classnames for template in templates]
    embeddings = []
    with torch.inference_mode():
        for start in range(0, len(texts), 500):
            chunk = texts[start : start + 500]
            if siglip:  # padded to its full length, no mask: how SigLIP was trained
                enc = tokenizer(
                    chunk, padding="max_length", max_length=64, truncation=True, return_tensors="pt"
                )
                out = model.get_text_features(input_ids=enc["input_ids"])
            else:
                enc = tokenizer(chunk, padding=True, truncation=True, max_length=77, return_tensors="pt")
                out = model.get_text_features(**enc)
            embeddings.append(torch.nn.functional.normalize(out.pooler_output, dim=-1))
    per_class = torch.cat(embeddings).view(len(classnames), len(templates), -1).mean(dim=1)
    return per_class / per_class.norm(dim=-1, keepdim=True)


def _reference_logits(model, processor, images, classifier: torch.Tensor) -> torch.Tensor:
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        image = model.get_image_features(pixel_values=pixel_values).pooler_output
        image = image / image.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * image @ classifier.T
        if hasattr(model, "logit_bias"):
            logits = logits + model.logit_bias
    return logits


def _in9_scores(logits: torch.Tensor, to_in9: np.ndarray) -> np.ndarray:
    probs = logits.double().softmax(dim=1).numpy()
    return np.stack([probs[:, to_in9 == k].sum(axis=1) for k in range(9)], axis=1)


def _load_reference(folder: Path):
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    return (
        AutoModel.from_pretrained(folder).eval(),
        AutoTokenizer.from_pretrained(folder),
        AutoImageProcessor.from_pretrained(folder, backend="pil"),
    )


# ------------------------------------------------------------------------------------------ the tests


def test_zero_shot_checkpoints_are_routed_before_the_classifier_kind():
    from transformers import CLIPConfig, ResNetConfig, SiglipConfig

    assert zero_shot.is_zero_shot(CLIPConfig(architectures=["CLIPModel"]))
    assert zero_shot.is_zero_shot(SiglipConfig(architectures=["SiglipModel"]))
    assert zero_shot.is_zero_shot(SiglipConfig())  # no architectures listed: the model type decides
    assert not zero_shot.is_zero_shot(CLIPConfig(architectures=["CLIPForImageClassification"]))
    assert not zero_shot.is_zero_shot(ResNetConfig(architectures=["ResNetForImageClassification"]))


def test_the_default_prompts_are_the_packaged_clip_lists():
    prompts = zero_shot.resolve_prompts(None)
    assert prompts == zero_shot.resolve_prompts("imagenet-1k")
    assert prompts.record() == {"classnames": PACKAGED["classnames"], "templates": PACKAGED["templates"]}
    assert len(prompts.classnames) == 1000 and len(prompts.templates) == 80
    assert prompts.classnames[:2] == ("tench", "goldfish") and prompts.templates[0] == "a bad photo of a {c}."
    assert PACKAGED["license"].startswith("MIT") and "CLIP_benchmark" in PACKAGED["source"]
    assert zero_shot.resolve_prompts("nine").templates == prompts.templates


def test_clip_default_prompts_equal_an_independent_forward(zs_models, zs_data, tmp_path, monkeypatch):
    """The default path (1000 ImageNet-1k names, the paper's 1000 -> 9 mapping) with the first 2 of the 80
    templates: 80 x 1000 prompts take minutes on 2 shared cores even for a tiny text tower; all 80 templates
    are used in the SigLIP test below."""
    templates = 2
    packaged = zero_shot.default_prompts()
    default = zero_shot.Prompts(packaged.classnames, packaged.templates[:templates], "imagenet-1k")
    monkeypatch.setattr(zero_shot, "default_prompts", lambda: default)
    out = tmp_path / "out"
    results = evaluate(
        str(zs_models["clip"]),
        str(zs_data),
        "original,mixed_rand",
        output_dir=out,
        cache_dir=tmp_path / "cache",
        batch_size=8,
        progress=False,
    )
    doc = json.loads((out / "results.json").read_text())
    assert doc["model"]["label_space"] == "zero-shot:imagenet-1k" and doc["model"]["num_labels"] == 1000
    recorded = doc["model"]["prompts"]
    assert recorded == {"classnames": PACKAGED["classnames"], "templates": PACKAGED["templates"][:templates]}
    assert len(recorded["classnames"]) == 1000 and len(PACKAGED["templates"]) == 80
    assert results.model["prompts"] == recorded

    model, tokenizer, processor = _load_reference(zs_models["clip"])
    classifier = _reference_classifier(
        model, tokenizer, recorded["classnames"], recorded["templates"], siglip=False
    )
    table = pq.read_table(out / "predictions.parquet").to_pylist()
    source = open_data(str(zs_data))
    for variant in ("original", "mixed_rand"):
        ds = source.variant(variant)
        logits = _reference_logits(model, processor, [row["image"] for row in ds], classifier)
        assert logits.std(dim=1).min() > 0.05  # the classes are told apart: not a degenerate classifier
        expected = {
            image_id: (scores, int(IN1K_TO_IN9[top1]), int(top1))
            for image_id, scores, top1 in zip(
                ds["image_id"], _in9_scores(logits, IN1K_TO_IN9), logits.argmax(dim=1).tolist(), strict=True
            )
        }
        rows = [r for r in table if r["variant"] == variant]
        assert len(rows) == len(expected) == 18
        for row in rows:
            scores, prediction, top1 = expected[row["image_id"]]
            np.testing.assert_allclose(row["scores"], scores, atol=1e-4)
            assert (row["prediction"], row["raw_top1"]) == (prediction, top1)


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_one_template_equals_the_models_own_logits_per_image(zs_models, zs_data, tmp_path, kind):
    """With one template per class, W is the normalised text embeddings: the module's logits are the
    model's own forward (logits_per_image, SigLIP's logit_bias included)."""
    prompts = {"classnames": list(CLASS_NAMES), "templates": ["a photo of a {c}."]}
    loaded = load_model(str(zs_models[kind]), prompts=prompts, cache_dir=tmp_path)
    assert loaded.label_space.kind == "zero-shot:in9"
    assert loaded.record["prompts"] == prompts and loaded.record["preprocessing"]["path"] == "tensor"
    model, tokenizer, processor = _load_reference(zs_models[kind])
    images = [row["image"] for row in open_data(str(zs_data)).variant("original").select(range(6))]
    texts = [f"a photo of a {name}." for name in CLASS_NAMES]
    padding = dict(padding="max_length", max_length=64) if kind == "siglip" else dict(padding=True)
    text = tokenizer(texts, truncation=True, return_tensors="pt", **padding)
    if kind == "siglip":
        text = {"input_ids": text["input_ids"]}
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        own = model(pixel_values=pixel_values, **text).logits_per_image
        ours = loaded.model(loaded.preprocess(torch.stack([_chw(image) for image in images])))
    torch.testing.assert_close(ours, own, atol=1e-4, rtol=1e-4)


def _chw(image) -> torch.Tensor:
    return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).contiguous()


def test_siglip_nine_prompts_scores_and_label_space(zs_models, zs_data, tmp_path):
    results = evaluate(
        str(zs_models["siglip"]),
        str(zs_data),
        "original",
        prompts="nine",
        cache_dir=tmp_path / "cache",
        batch_size=8,
        progress=False,
    )
    assert results.model["label_space"] == "zero-shot:in9" and results.model["num_labels"] == 9
    recorded = results.model["prompts"]
    assert recorded == {"classnames": list(CLASS_NAMES), "templates": PACKAGED["templates"]}
    model, tokenizer, processor = _load_reference(zs_models["siglip"])
    classifier = _reference_classifier(
        model, tokenizer, recorded["classnames"], recorded["templates"], siglip=True
    )
    ds = open_data(str(zs_data)).variant("original")
    logits = _reference_logits(model, processor, [row["image"] for row in ds], classifier)
    by_id = {row["image_id"]: row for row in results.predictions.to_pylist()}
    scores = _in9_scores(logits, np.arange(9))
    for i, image_id in enumerate(ds["image_id"]):
        np.testing.assert_allclose(by_id[image_id]["scores"], scores[i], atol=1e-4)
        assert by_id[image_id]["prediction"] == int(logits[i].argmax())


def test_text_classifier_is_cached_per_checkpoint_and_prompts(zs_models, tmp_path, monkeypatch):
    prompts = {"classnames": list(CLASS_NAMES), "templates": ["a photo of a {c}.", "a {c}."]}
    first = load_model(str(zs_models["clip"]), prompts=prompts, cache_dir=tmp_path)
    files = sorted((tmp_path / "text-classifiers").glob("*.safetensors"))
    assert len(files) == 1

    def never(*args, **kwargs):
        raise AssertionError("the text classifier was recomputed")

    monkeypatch.setattr(zero_shot, "encode_text_classifier", never)
    second = load_model(str(zs_models["clip"]), prompts=prompts, cache_dir=tmp_path)
    assert torch.equal(first.model.model.classifier, second.model.model.classifier)
    assert first.identity() == second.identity()
    with pytest.raises(AssertionError, match="recomputed"):  # other prompts: another entry
        load_model(str(zs_models["clip"]), prompts={**prompts, "templates": ["{c}"]}, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="recomputed"):  # use_cache=False: neither read nor written
        load_model(str(zs_models["clip"]), prompts=prompts, cache_dir=tmp_path, use_cache=False)
    files[0].write_bytes(b"damaged")  # a damaged entry is recomputed, never trusted
    with pytest.raises(AssertionError, match="recomputed"):
        load_model(str(zs_models["clip"]), prompts=prompts, cache_dir=tmp_path)


def test_default_cache_location_is_the_user_cache(zs_models, tmp_path, monkeypatch):
    monkeypatch.setenv("IN9_CACHE", str(tmp_path / "user"))
    load_model(str(zs_models["clip"]), prompts={"classnames": list(CLASS_NAMES), "templates": ["{c}"]})
    assert len(list((tmp_path / "user" / "text-classifiers").glob("*.safetensors"))) == 1


def test_prompts_file_class_names_are_mapped_like_a_heads_labels(zs_models, tmp_path):
    spelled = list(IN9_SPELLINGS)  # the IN-9 names shuffled and spelled differently
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"classnames": spelled, "templates": ["a photo of a {}."]}))
    loaded = load_model(str(zs_models["clip"]), prompts=path, cache_dir=tmp_path)
    assert loaded.label_space.kind == "zero-shot:in9"
    assert loaded.label_space.to_in9.tolist() == [8, 0, 2, 1, 6, 3, 4, 5, 7]
    assert loaded.record["prompts"]["templates"] == ["a photo of a {}."]

    path.write_text(json.dumps({"classnames": ["a husky", "a tabby cat", "a truck"], "templates": ["{c}"]}))
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({"a husky": 0, "a truck": "wheeled vehicle"}))
    loaded = load_model(str(zs_models["clip"]), prompts=path, label_map=label_map, cache_dir=tmp_path)
    assert loaded.label_space.kind == "zero-shot:label-map"
    assert loaded.label_space.to_in9.tolist() == [0, -1, 2]


def test_prompts_with_a_classifier_checkpoint_are_refused(tiny_models):
    with pytest.raises(In9Error, match=r"prompts=nine: model=.* is not a zero-shot model"):
        load_model(str(tiny_models["in9"]), prompts="nine")


def test_cli_prompts_nine_and_the_challenge(zs_models, zs_data, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--model", str(zs_models["clip"]), "--data", str(zs_data), "--variants", "original"]
    args += ["--prompts", "nine", "--challenge", "--output-dir", str(out), "--cache-dir", str(tmp_path / "c")]
    assert main([*args, "--no-progress", "--batch-size", "16"]) == 0
    assert "wrote" in capsys.readouterr().out
    doc = json.loads((out / "results.json").read_text())
    assert doc["model"]["label_space"] == "zero-shot:in9"
    recorded = doc["model"]["prompts"]
    assert recorded == {"classnames": list(CLASS_NAMES), "templates": PACKAGED["templates"]}
    challenge = doc["metrics"]["challenge"]
    assert challenge["num_foregrounds"] == 18 and 0.0 <= challenge["challenge_accuracy"] <= 1.0
    assert (out / "challenge.parquet").is_file()

    # CLIP with all 80 templates: predictions.parquet against the hand-built reference.
    model, tokenizer, processor = _load_reference(zs_models["clip"])
    classifier = _reference_classifier(
        model, tokenizer, recorded["classnames"], recorded["templates"], siglip=False
    )
    ds = open_data(str(zs_data)).variant("original")
    logits = _reference_logits(model, processor, [row["image"] for row in ds], classifier)
    scores = _in9_scores(logits, np.arange(9))
    by_id = {row["image_id"]: row for row in pq.read_table(out / "predictions.parquet").to_pylist()}
    for i, image_id in enumerate(ds["image_id"]):
        np.testing.assert_allclose(by_id[image_id]["scores"], scores[i], atol=1e-4)
        assert by_id[image_id]["prediction"] == int(logits[i].argmax())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "error: --prompts {path}: not imagenet-1k or nine and no such file"),
        ("{not json", "error: --prompts {path}: not valid JSON"),
        ('["a"]', "error: --prompts {path}: expected a JSON object"),
        ('{"classnames": ["dog"]}', "error: --prompts {path}: no 'templates' field"),
        (
            '{"classnames": [], "templates": ["{c}"]}',
            "error: --prompts {path}: 'classnames' must be a non-empty",
        ),
        (
            '{"classnames": ["dog"], "templates": ["a photo"]}',
            "error: --prompts {path}: template 'a photo' must",
        ),
        (
            '{"classnames": ["dog"], "templates": ["{c}"], "x": 1}',
            "error: --prompts {path}: unknown field 'x'",
        ),
        (
            '{"classnames": ["cat", "car"], "templates": ["{c}"]}',
            "error: --prompts {path}: the class names: cannot map",
        ),
    ],
)
def test_bad_prompts_file_is_one_line(zs_models, zs_data, tmp_path, capsys, content, message):
    path = tmp_path / "prompts.json"
    if content is not None:
        path.write_text(content)
    code = main(["--model", str(zs_models["clip"]), "--data", str(zs_data), "--prompts", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(message.format(path=path)), err[0]
    if "cannot map" in message:
        assert "--label-map FILE" in err[0]


def test_a_tokenizer_that_cannot_load_is_one_line(zs_models, tmp_path):
    """SigLIP's own tokenizer is sentencepiece's; without the package (or with a broken spiece.model)."""
    import shutil

    folder = tmp_path / "siglip"
    shutil.copytree(zs_models["siglip"], folder)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.json",
        "merges.txt",
    ):
        (folder / name).unlink(missing_ok=True)
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "SiglipTokenizer"}))
    (folder / "spiece.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(
        In9Error, match=r"^model=.*: its tokenizer could not be loaded from .*spiece\.model\)$"
    ):
        load_model(str(folder), prompts="nine", cache_dir=tmp_path)


@pytest.mark.slow
def test_torchrun_two_processes_encode_the_text_classifier_once(zs_models, zs_data, tmp_path):
    """The first process encodes and caches W, the second waits at one barrier and reads it; the scores
    equal one process's."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prompts = tmp_path / "p.json"
    prompts.write_text(
        json.dumps({"classnames": list(CLASS_NAMES), "templates": ["a photo of a {c}.", "{c}"]})
    )
    args = ["--model", str(zs_models["clip"]), "--data", str(zs_data), "--variants", "original"]
    args += ["--prompts", str(prompts), "--no-progress", "--num-workers", "0", "--batch-size", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2"]
    torchrun += ["--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "evaluator.cli"]
    cache = ["--cache-dir", str(tmp_path / "cache")]
    two = subprocess.run(
        [*torchrun, *args, *cache, "--output-dir", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert len(list((tmp_path / "cache" / "text-classifiers").glob("*.safetensors"))) == 1
    one = main([*args, "--cache-dir", str(tmp_path / "c1"), "--output-dir", str(tmp_path / "one")])
    assert one == 0
    tables = [pq.read_table(tmp_path / run / "predictions.parquet").to_pylist() for run in ("one", "two")]
    by_id = [{row["image_id"]: row for row in table} for table in tables]
    assert by_id[0].keys() == by_id[1].keys() and len(by_id[0]) == 18
    for image_id, row in by_id[0].items():
        np.testing.assert_allclose(row["scores"], by_id[1][image_id]["scores"], atol=1e-5)
        assert row["prediction"] == by_id[1][image_id]["prediction"]
