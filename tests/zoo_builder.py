"""Test-time builder of the model zoo: tiny random checkpoints in an offline Hub cache.

For each family of ``tests/zoo/registry.json`` the folder ``tests/zoo/<family>/`` holds the Hub's
``config.json`` (without the 1000-name label table, see below) and ``preprocessor_config.json``. The builder
shrinks the architecture (``shrink``: fewer layers, narrower widths; image size, patch size, label table and
every preprocessing field stay), writes seeded random weights with ``save_pretrained`` into
``<cache>/models--org--name/snapshots/<sha>/`` with ``refs/main``, and copies the preprocessor file beside
them: what an earlier online ``snapshot_download`` leaves, so ``load_model("org/name")`` works with
``HF_HUB_OFFLINE=1``.

Label tables: ``labels`` ``imagenet-1k`` writes ``in9_builder.classes.imagenet1k_names()`` (the table
transformers' conversion scripts write, from huggingface/label-files ``imagenet-1k-id2label.json``);
``background+imagenet-1k`` writes ``background`` at 0 and those names at 1..1000 (the TF MobileNet heads);
``none`` writes no table (a backbone without a head); ``zero-shot`` (CLIP, SigLIP) has none either and gets a
tiny tokenizer; ``timm`` repos get their ``config.json`` as timm writes it, plus ``model_args`` (shrink) and
weights from ``timm.create_model`` (only where timm is importable: :func:`timm_available`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from functools import lru_cache
from pathlib import Path

ZOO = Path(__file__).parent / "zoo"
REGISTRY = ZOO / "registry.json"
CHECKS = ("load", "labels", "processor", "paper", "e2e")


@lru_cache(maxsize=1)
def registry() -> dict[str, dict]:
    """family -> registry entry, in registry order."""
    doc = json.loads(REGISTRY.read_text())
    return {entry["family"]: entry for entry in doc["families"]}


def fake_sha(hub_id: str) -> str:
    """A stable 40-hex commit id per repository (what refs/main names)."""
    return hashlib.sha1(f"in9-zoo:{hub_id}".encode()).hexdigest()


def timm_available() -> bool:
    try:
        import timm  # noqa: F401
    except ImportError:
        return False
    return True


def sentencepiece_available() -> bool:
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        return False
    return True


def _merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def id2label(labels: str) -> dict[int, str] | None:
    from in9_builder.classes import imagenet1k_names

    if labels == "imagenet-1k":
        return dict(enumerate(imagenet1k_names()))
    if labels == "background+imagenet-1k":
        return {0: "background", **{i + 1: name for i, name in enumerate(imagenet1k_names())}}
    return None


def hub_config(family: str) -> dict:
    """The family's config.json as the Hub has it (label table included), before shrinking."""
    entry = registry()[family]
    config = json.loads((ZOO / family / "config.json").read_text())
    table = id2label(entry["labels"])
    if table is not None:
        config["id2label"] = {str(i): name for i, name in table.items()}
        config["label2id"] = {name: i for i, name in table.items()}
    return config


def repo_folder(cache: Path, hub_id: str) -> Path:
    return Path(cache) / f"models--{hub_id.replace('/', '--')}"


def snapshot_folder(cache: Path, hub_id: str) -> Path:
    return repo_folder(cache, hub_id) / "snapshots" / fake_sha(hub_id)


def build(family: str, cache: Path, seed: int = 0) -> Path:
    """Write the family's tiny checkpoint into the Hub cache ``cache``; return its snapshot folder.

    Idempotent: a snapshot already there is returned as is."""
    entry = registry()[family]
    snapshot = snapshot_folder(cache, entry["hub_id"])
    if (snapshot / "config.json").is_file():
        return snapshot
    staging = snapshot.with_name(snapshot.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if entry["labels"] == "timm":
        _build_timm(entry, staging, seed)
    else:
        _build_transformers(entry, staging, seed)
    staging.rename(snapshot)
    refs = repo_folder(cache, entry["hub_id"]) / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "main").write_text(fake_sha(entry["hub_id"]))
    return snapshot


def _build_transformers(entry: dict, folder: Path, seed: int) -> None:
    import torch
    import transformers
    from transformers import AutoConfig

    family = entry["family"]
    raw = _merge(hub_config(family), entry.get("shrink", {}))
    if entry["labels"] == "zero-shot":
        vocab_size = _write_tokenizer(entry, folder)
        raw["text_config"]["vocab_size"] = vocab_size
    model_type = raw.pop("model_type")
    config = AutoConfig.for_model(model_type, **raw)
    architecture = getattr(transformers, config.architectures[0])
    torch.manual_seed(seed)
    model = architecture(config).eval()
    model.save_pretrained(folder)
    shutil.copyfile(ZOO / family / "preprocessor_config.json", folder / "preprocessor_config.json")


def _write_tokenizer(entry: dict, folder: Path) -> int:
    """A tiny tokenizer of the family's kind; returns its vocabulary size."""
    if entry["model_type"] == "clip":
        return _write_clip_tokenizer(folder)
    if entry["model_type"] == "siglip":
        return _write_siglip_tokenizer(folder)
    raise ValueError(f"no tokenizer recipe for {entry['model_type']}")


def _byte_symbols() -> list[str]:
    """GPT-2 / CLIP byte-to-unicode symbols (the 256 base tokens of a byte-level BPE)."""
    codes = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    codes += list(range(ord("®"), ord("ÿ") + 1))
    extra = 0
    symbols = dict.fromkeys(range(256))
    for b in range(256):
        if b in codes:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def _write_clip_tokenizer(folder: Path) -> int:
    symbols = _byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "model_max_length": 77,
            }
        )
    )
    (folder / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
            }
        )
    )
    return len(vocab)


def _write_siglip_tokenizer(folder: Path) -> int:
    """Train a tiny sentencepiece model on a fixed text (deterministic); needs the sentencepiece package."""
    import io

    import sentencepiece as spm

    from in9_builder.classes import CLASS_NAMES, imagenet1k_names

    text = [f"a photo of a {name}." for name in list(CLASS_NAMES) + imagenet1k_names()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text),
        model_writer=model,
        vocab_size=256,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    (folder / "spiece.model").write_bytes(model.getvalue())
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "SiglipTokenizer",
                "eos_token": "</s>",
                "pad_token": "</s>",
                "unk_token": "<unk>",
                "model_max_length": 64,
                "do_lower_case": True,
            }
        )
    )
    return 256


def _build_timm(entry: dict, folder: Path, seed: int) -> None:
    """config.json as timm writes it (+ ``model_args``: the shrink) and ``model.safetensors``."""
    import timm
    import torch
    from safetensors.torch import save_file

    family = entry["family"]
    config = json.loads((ZOO / family / "config.json").read_text())
    config = _merge(config, entry.get("shrink", {}))
    torch.manual_seed(seed)
    model = timm.create_model(
        config["architecture"],
        pretrained=False,
        num_classes=config["num_classes"],
        **config.get("model_args", {}),
    )
    config["num_features"] = model.num_features
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / "model.safetensors")


def needs(family: str, check: str) -> str | None:
    """The part of the issue that ``check`` of ``family`` waits for (None: it must pass on this branch)."""
    entry_needs = registry()[family].get("needs", {})
    return entry_needs.get(check) or entry_needs.get("*")


def _origin(source: str | None) -> str:
    if source is None:
        return "— (`pretrained_cfg`)"
    if source.startswith("real:"):
        return "Hub"
    if source.startswith("real fields"):
        return "Hub (fine-tune copy)"
    if source.startswith(("real form", "reconstructed in the")):
        return "form"
    return "rec."


def readme_table() -> str:
    """The README's "Model zoo checked offline" table, from the registry (regenerate it after editing needs:
    ``python -c "from tests.zoo_builder import readme_table; print(readme_table())"``)."""
    rows = [
        "| family | Hub id | config.json | preprocessor | label space | " + " | ".join(CHECKS) + " |",
        "|---|---|---|---|---|" + "---|" * len(CHECKS),
    ]
    for family, entry in registry().items():
        cells = []
        for check in CHECKS:
            if entry["kind"] == "refused" and check != "load":
                cells.append("n/a")
                continue
            part = needs(family, check)
            cells.append(f"waits: {part}" if part else "✓")
        kind = "refused (no head)" if entry["kind"] == "refused" else entry["kind"]
        sources = entry["sources"]
        rows.append(
            f"| {family} | `{entry['hub_id']}` | {_origin(sources['config'])} | "
            f"{_origin(sources.get('preprocessor'))} | {kind} | " + " | ".join(cells) + " |"
        )
    return "\n".join(rows)
