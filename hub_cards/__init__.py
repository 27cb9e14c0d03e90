"""Card and page templates (dataset card, eval.yaml, model card snippet, leaderboard page), their renderers.

Everything a reader of the Hub sees about IN-9 is rendered from the files in this folder, with
huggingface_hub's card classes for the cards, so the text lives in one place and the export, the evaluator and
the leaderboard share it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from in9_builder.classes import CLASSES, CONFIGS, IMAGE_VARIANTS, MIXED_VARIANTS, in1k_indices

from .gallery import GALLERY_FILENAME, gallery_from_export, make_gallery

TEMPLATES = Path(__file__).parent
PUBLISHED_RESULTS = TEMPLATES / "published_results.json"
CANONICAL_FINGERPRINTS = TEMPLATES / "canonical_fingerprints.json"
# The local `evaluate` metric module: `evaluate.load(str(METRIC_SCRIPT))`.
METRIC_SCRIPT = TEMPLATES / "metric" / "in9_metric.py"

# The id the Hub repo is expected to have; every renderer takes another one.
DEFAULT_DATASET_ID = "in9-bench/in9"
EVALUATION_FRAMEWORK = "in9-bench"

# One line per config, as the paper defines them (Xiao et al., ICLR 2021, Table 1).
CONFIG_DEFINITIONS: dict[str, str] = {
    "original": "the unmodified image",
    "only_bg_b": "the bounding box blacked out; the background unmodified",
    "only_bg_t": "the bounding box filled by tiling the largest strip of background outside it",
    "no_fg": "the foreground (mask = 1) blacked out; the background unmodified",
    "only_fg": "the foreground unmodified on a black background",
    "mixed_same": "the foreground pasted on the Only-BG-T background of another image of the same class",
    "mixed_rand": "the foreground pasted on the Only-BG-T background of an image of a uniformly random class",
    "mixed_next": "the foreground pasted on the Only-BG-T background of class (y+1) mod 9; the label stays y",
    "fg_mask": "the binary foreground mask (1 = foreground) beside the `original` image",
}
CONFIG_TITLES: dict[str, str] = {
    "original": "Original",
    "only_bg_b": "Only-BG-B",
    "only_bg_t": "Only-BG-T",
    "no_fg": "No-FG",
    "only_fg": "Only-FG",
    "mixed_same": "Mixed-Same",
    "mixed_rand": "Mixed-Rand",
    "mixed_next": "Mixed-Next",
    "fg_mask": "FG mask",
}

CITATION = """@inproceedings{xiao2021noise,
  title     = {Noise or Signal: The Role of Image Backgrounds in Object Recognition},
  author    = {Kai Yuanqing Xiao and Logan Engstrom and Andrew Ilyas and Aleksander Madry},
  booktitle = {International Conference on Learning Representations},
  year      = {2021},
  url       = {https://arxiv.org/abs/2006.09994}
}"""


def _ranges(indices: Sequence[int]) -> str:
    """ImageNet-1k indices as compact ranges: ``151-170, 173-268``."""
    parts: list[str] = []
    start = prev = indices[0]
    for i in list(indices[1:]) + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(parts)


def class_table() -> list[dict[str, Any]]:
    """The 9 classes with their ImageNet-1k indices as rows for templates (from ``in9_builder.classes``, never
    restated)."""
    rows = []
    for c in CLASSES:
        idx = in1k_indices(c.index)
        rows.append(
            {
                "index": c.index,
                "name": c.name,
                "folder": c.folder,
                "wnid": c.wnid,
                "num_in1k": len(idx),
                "in1k": _ranges(idx),
            }
        )
    return rows


def _config_rows(configs: Any) -> list[dict[str, Any]]:
    """Normalise the export's configs (the ``in9_export.json`` mapping or a list of dicts) to template rows in
    the canonical config order."""
    if isinstance(configs, Mapping):
        items = [{"name": name, **dict(info)} for name, info in configs.items()]
    else:
        items = [dict(c) for c in configs or []]
    order = {name: i for i, name in enumerate(CONFIGS)}
    items.sort(key=lambda c: order.get(c["name"], len(order)))
    rows = []
    for c in items:
        num_rows = c.get("num_rows_by_split", c.get("num_rows", {}))
        if not isinstance(num_rows, Mapping):
            num_rows = {"test": num_rows}
        rows.append(
            {
                **c,
                "num_rows": dict(num_rows),
                "title": CONFIG_TITLES.get(c["name"], c["name"]),
                "definition": CONFIG_DEFINITIONS.get(c["name"], ""),
                "mixed": c["name"] in MIXED_VARIANTS,
            }
        )
    return rows


def dataset_card_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The full template context: the export's ``context`` (typically the ``in9_export.json`` summary: source,
    edition, seed, source_params, configs with fingerprint and num_rows, package_version) plus everything the
    card states that does not depend on the export (definitions, class table, citation)."""
    ctx = dict(context)
    source = ctx.get("source", "release")
    ctx.setdefault("source", source)
    ctx.setdefault("edition", "official" if ctx.get("seed") is None and source == "release" else "seeded")
    ctx.setdefault("seed", None)
    ctx.setdefault("source_params", {})
    ctx.setdefault("package_version", None)
    ctx.setdefault("dataset_id", DEFAULT_DATASET_ID)
    ctx.setdefault("gallery", None)
    ctx["configs"] = _config_rows(ctx.get("configs"))
    ctx["splits"] = sorted({s for c in ctx["configs"] for s in c["num_rows"]})
    ctx["classes"] = class_table()
    ctx["citation"] = CITATION
    ctx["evaluation_framework"] = EVALUATION_FRAMEWORK
    ctx["uses_imagenet"] = source != "synthetic"
    return ctx


def _default_card_data(source: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "pretty_name": "ImageNet-9 (IN-9): the backgrounds challenge",
        "task_categories": ["image-classification"],
        "tags": ["backgrounds", "robustness", "spurious-correlations", "imagenet-9", "in9"],
    }
    if source == "synthetic":
        data["license"] = "mit"
    else:
        # The images are ImageNet images: ImageNet's terms of access govern them.
        data.update(
            license="other",
            license_name="imagenet-terms-of-access",
            license_link="https://image-net.org/download.php",
            source_datasets=["imagenet-1k"],
        )
    return data


def render_dataset_card(card_data: dict, context: dict) -> str:
    """The dataset card README.md: YAML front matter from ``card_data`` (configs, dataset_info, ...) plus the
    body rendered from ``dataset_card.md`` with ``context`` (counts, fingerprints, edition, ...).

    ``card_data`` values win over the defaults (pretty name, task category), except the license fields, which
    follow the source (ImageNet terms, or MIT for synthetic data); tags are merged. ``context`` is the export
    summary, completed by :func:`dataset_card_context`."""
    from huggingface_hub import DatasetCard, DatasetCardData

    full_context = dataset_card_context(context)
    defaults = _default_card_data(full_context["source"])
    # The license terms are stated here, next to the card text that explains them; the rest of card_data wins.
    data = {**defaults, **card_data, **{k: v for k, v in defaults.items() if k.startswith("license")}}
    if defaults["license"] == "mit":
        for key in ("license_name", "license_link"):
            data.pop(key, None)
    data["tags"] = list(dict.fromkeys([*card_data.get("tags", []), *defaults["tags"]]))
    card = DatasetCard.from_template(
        DatasetCardData(**data), template_path=str(TEMPLATES / "dataset_card.md"), **full_context
    )
    return str(card)


def eval_yaml_data(dataset_id: str = DEFAULT_DATASET_ID, configs: Sequence[str] = IMAGE_VARIANTS) -> dict:
    """The dataset repo's ``eval.yaml`` (the Hub's leaderboard task list): one task per image variant."""
    return {
        "name": "IN-9 backgrounds challenge",
        "description": (
            "ImageNet-9 (Xiao et al., ICLR 2021): top-1 accuracy of an image classifier on 9 coarse ImageNet "
            "classes in variants that keep or remove foreground and background signal. Score with "
            f"`in9-eval`; values are accuracies in [0, 1]. Dataset: {dataset_id}."
        ),
        # A custom framework id must be added to huggingface.js packages/tasks/src/eval.ts before the Hub
        # accepts it; until then the file documents the tasks.
        "evaluation_framework": EVALUATION_FRAMEWORK,
        "tasks": [
            {"id": name, "config": name, "split": "test"} for name in configs if name in IMAGE_VARIANTS
        ],
    }


def render_eval_yaml(dataset_id: str = DEFAULT_DATASET_ID, configs: Sequence[str] = IMAGE_VARIANTS) -> str:
    """``eval.yaml`` as text, ready to be written at the dataset repo root."""
    import yaml

    return yaml.safe_dump(eval_yaml_data(dataset_id, configs), sort_keys=False, allow_unicode=True)


@lru_cache(maxsize=1)
def _published() -> dict:
    return json.loads(PUBLISHED_RESULTS.read_text(encoding="utf-8"))


def published_rows() -> list[dict[str, Any]]:
    """The published numbers (the paper, the original repository's README, later papers; percent, as printed),
    each with its source name and URL."""
    data = _published()
    sources = data["sources"]
    return [
        {
            **row,
            "source_name": sources[row["source"]]["name"],
            # what the page's Source column shows, the full name in its tooltip: a table fits a window
            "source_short": sources[row["source"]].get("short", sources[row["source"]]["name"]),
            "source_url": sources[row["source"]]["url"],
        }
        for row in data["rows"]
    ]


__all__ = [
    "CANONICAL_FINGERPRINTS",
    "CITATION",
    "CONFIG_DEFINITIONS",
    "CONFIG_TITLES",
    "DEFAULT_DATASET_ID",
    "GALLERY_FILENAME",
    "METRIC_SCRIPT",
    "TEMPLATES",
    "class_table",
    "dataset_card_context",
    "eval_yaml_data",
    "gallery_from_export",
    "make_gallery",
    "published_rows",
    "render_dataset_card",
    "render_eval_yaml",
]
