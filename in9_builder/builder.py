"""The IN-9 ``datasets`` builder: one config per variant plus ``fg_mask``.

It only wires a source (``in9_builder.sources``) and the renderer (``in9_builder.render``) into
``_generate_examples``. Rows of every config are sorted by (label, image_id); generated images are PNG
(lossless) unless ``image_format="jpeg"`` (``in9_builder.encode``); official release files are passed through
byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import datasets

from .classes import CLASS_NAMES, CONFIGS, MIXED_VARIANTS
from .encode import check_image_format, encode_image, encode_mask
from .errors import In9Error
from .render import composite, draw_backgrounds, render_variant
from .sources import OFFICIAL_WHEN_SEEDED, Source, background_of, get_source, resolve_source_kwargs

MAX_SHARDS = 8  # generator shards per split: what num_proc can spread over


def features_for(config: str) -> datasets.Features:
    """The features of a config: ``image``, [``mask``,] ``label``, ``image_id`` [and the mixed provenance]."""
    labels = datasets.ClassLabel(names=list(CLASS_NAMES))
    columns: dict[str, Any] = {"image": datasets.Image()}
    if config == "fg_mask":
        columns["mask"] = datasets.Image()
    columns["label"] = labels
    columns["image_id"] = datasets.Value("string")
    if config in MIXED_VARIANTS:
        columns["fg_image_id"] = datasets.Value("string")
        columns["bg_image_id"] = datasets.Value("string")
        columns["bg_label"] = datasets.ClassLabel(names=list(CLASS_NAMES))
    return datasets.Features(columns)


def mixed_image_id(fg_image_id: str, bg_image_id: str) -> str:
    """The release's name of a mixed image, ``fg_<stem>_bg_<stem>``; used for seeded rows too."""
    return f"fg_{fg_image_id}_bg_{bg_image_id}"


@dataclass
class In9Config(datasets.BuilderConfig):
    """An IN-9 variant from a source. ``seed`` draws the mixed backgrounds; ``None`` = the official edition
    (seed 0 for a source without official files). A source's own seeds (scenes, balancing) are in
    ``source_kwargs``."""

    source: str = "release"
    seed: int | None = None
    source_kwargs: dict = field(default_factory=dict)
    image_format: str = "png"
    splits: tuple[str, ...] | None = None  # None = every split the source has


class In9(datasets.GeneratorBasedBuilder):
    """IN-9: ``In9(config_name="mixed_rand", source="synthetic", seed=1).download_and_prepare()``."""

    BUILDER_CONFIG_CLASS = In9Config
    BUILDER_CONFIGS = [In9Config(name=c, version=datasets.Version("1.0.0")) for c in CONFIGS]
    DEFAULT_CONFIG_NAME = "original"
    DEFAULT_WRITER_BATCH_SIZE = 100  # rows buffered before a write: keeps memory flat with large images

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("dataset_name", "in9")
        config_name = kwargs.get("config_name")
        if config_name is not None and config_name not in CONFIGS:
            raise In9Error(f"unknown variant {config_name!r}; choose from {', '.join(CONFIGS)}")
        super().__init__(*args, **kwargs)
        check_image_format(self.config.image_format)

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=f"IN-9 {self.config.name} (Xiao et al., ICLR 2021), source {self.config.source}",
            features=features_for(self.config.name),
            homepage="https://github.com/MadryLab/backgrounds_challenge",
        )

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        cfg = self.config
        source_kwargs = resolve_source_kwargs(cfg.source, cfg.data_dir, cfg.source_kwargs, dl_manager)
        source = get_source(cfg.source, **source_kwargs)
        splits = list(cfg.splits or source.splits())
        for split in splits:
            if split not in source.splits():
                raise In9Error(
                    f"splits: source {cfg.source!r} has no split {split!r}; "
                    f"it has {', '.join(source.splits())}",
                    argument="splits",
                )
        generators = []
        for split in splits:
            ids = row_plan(source, cfg.name, split, cfg.seed)
            step = -(-len(ids) // min(MAX_SHARDS, max(len(ids), 1))) if ids else 1
            shards = [ids[i : i + step] for i in range(0, len(ids), step)] or [[]]
            gen_kwargs = {
                "source_name": cfg.source,
                "source_kwargs": source_kwargs,
                "split": split,
                "shards": shards,
            }
            generators.append(datasets.SplitGenerator(name=split, gen_kwargs=gen_kwargs))
        return generators

    def _prepare_split_single(self, *args, **kwargs):
        # datasets wraps every generation error in DatasetGenerationError (and a worker process loses the
        # cause on the way back); unwrap ours here, in the process that raised it, so the user sees one line.
        try:
            yield from super()._prepare_split_single(*args, **kwargs)
        except datasets.exceptions.DatasetGenerationError as err:
            if isinstance(err.__cause__, In9Error):
                raise err.__cause__ from None
            raise

    def _generate_examples(self, source_name: str, source_kwargs: dict, split: str, shards: list[list[str]]):
        source = get_source(source_name, **source_kwargs)
        for shard in shards:
            for row in generate_rows(
                source, self.config.name, split, shard, self.config.seed, self.config.image_format
            ):
                yield row["image_id"], row


def edition_seed(source: Source, seed: int | None) -> int | None:
    """The seed actually used: None only for the official edition of a source with official files."""
    if seed is None and not source.has_official_files:
        return 0
    return seed


def uses_official_files(source: Source, config: str, seed: int | None) -> bool:
    return source.has_official_files and (seed is None or config in OFFICIAL_WHEN_SEEDED)


def row_plan(source: Source, config: str, split: str, seed: int | None) -> list[str]:
    """The ids that key the rows of a config, in row order: official file stems, or scene ids."""
    if uses_official_files(source, config, edition_seed(source, seed)):
        return source.official_ids(config, split)
    return _scene_ids(source, split)


def _scene_ids(source: Source, split: str) -> list[str]:
    labels = source.labels(split)
    return sorted(labels, key=lambda image_id: (labels[image_id], image_id))


def mixed_plan(labels: dict[str, int], fg_ids: list[str], seed: int, variant: str) -> list[dict[str, Any]]:
    """The provenance of a seeded mixed variant's rows for the foregrounds ``fg_ids``, in that order:
    ``label``, ``image_id``, ``fg_image_id``, ``bg_image_id``, ``bg_label``.

    The pairing is drawn over all of ``labels`` (the whole split: a pure function of seed and sorted ids),
    then sliced, so a subset of foregrounds gets the rows the full set has for them. The builder and the
    evaluator's seed sweep both use it.
    """
    pairing = draw_backgrounds(seed, labels, variant)
    return [
        {
            "label": labels[fg_id],
            "image_id": mixed_image_id(fg_id, pairing[fg_id]),
            "fg_image_id": fg_id,
            "bg_image_id": pairing[fg_id],
            "bg_label": labels[pairing[fg_id]],
        }
        for fg_id in fg_ids
    ]


def generate_rows(
    source: Source, config: str, split: str, ids: list[str], seed: int | None, image_format: str = "png"
) -> Iterator[dict[str, Any]]:
    """The rows of ``config`` for the scene (or official) ids ``ids``, in the given order, one at a time."""
    seed = edition_seed(source, seed)
    if uses_official_files(source, config, seed):
        yield from source.official_rows(config, split, ids)
        return
    if config in MIXED_VARIANTS:
        for row in mixed_plan(source.labels(split), ids, seed, config):
            scene = source.scene(split, row["fg_image_id"])
            pixels = composite(scene.image, scene.mask, background_of(source, split, row["bg_image_id"]))
            yield {"image": encode_image(pixels, image_format), **row}
        return
    for image_id in ids:
        scene = source.scene(split, image_id)
        if config == "fg_mask":
            yield {
                "image": encode_image(scene.image, image_format),
                "mask": encode_mask(scene.mask),
                "label": scene.label,
                "image_id": image_id,
            }
        else:
            yield {
                "image": encode_image(render_variant(config, scene), image_format),
                "label": scene.label,
                "image_id": image_id,
            }
