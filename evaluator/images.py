"""The images a run scores beyond one pass over the stored variants: shared decoded pixels and seeded draws.

:class:`RunImages` wraps a :class:`~evaluator.data.DataSource` and a
:class:`~evaluator.runtime.pixels.PixelStore`. In a sweep (``shared=True``) every variant is decoded once
and every model reads the same pixels; the challenge's foregrounds and background pool come from the same
store. :meth:`RunImages.seeded` re-renders a mixed variant with another background draw from the data's own
``fg_mask`` (original + mask) and ``only_bg_t`` images, with the builder's draw
(:func:`in9_builder.builder.mixed_plan`) and composite (:func:`in9_builder.render.composite`): the rows of
``in9-build export --seed N`` of that data, image for image.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch

from evaluator.data import DataSource
from evaluator.runtime.pixels import PixelStore, StoredArrays, StoredImages
from in9_builder.builder import mixed_plan
from in9_builder.classes import MIXED_VARIANTS
from in9_builder.errors import In9Error
from in9_builder.render import composite

SEED_INPUTS = ("fg_mask", "only_bg_t")


class SeededImages(torch.utils.data.Dataset):
    """(row index, composite) of a seeded mixed variant, rendered when asked (a few µs per image)."""

    def __init__(self, fg: StoredArrays, masks: StoredArrays, bg: StoredArrays, rows: list[tuple[int, int]]):
        self.fg, self.masks, self.bg, self.rows = fg, masks, bg, rows  # rows: (fg index, bg index)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        fg_index, bg_index = self.rows[index]
        return index, composite(self.fg[fg_index], self.masks[fg_index], self.bg[bg_index])

    def __getitems__(self, indices: list[int]):
        return [self[i] for i in indices]

    def close(self) -> None:
        pass


@dataclass
class SeededVariant:
    """A mixed variant re-rendered with background draw ``seed``: its identity rows and images."""

    variant: str
    seed: int
    rows: dict[str, list]  # label, image_id, fg_image_id, bg_image_id, bg_label; fg_mask's row order
    images: SeededImages
    fingerprint: str | None  # what the prediction cache keys it by; None with a limit (not cached)


def check_seeds(seeds: tuple[int, ...], variants: list[str], source: DataSource) -> None:
    """Refuse ``seeds`` that have nothing to re-render or data they cannot be re-rendered from exactly."""
    if not seeds:
        return
    given = "seeds=" + ",".join(str(s) for s in seeds)
    if not any(v in MIXED_VARIANTS for v in variants):
        raise In9Error(
            f"{given}: seeds re-render the mixed variants, and none of {', '.join(variants)} is one; add "
            f"{', '.join(MIXED_VARIANTS)} to the variants",
            argument="seeds",
        )
    if source.image_format == "jpeg":
        raise In9Error(
            f"{given}: {source.location} stores its generated images as JPEG, so its originals are lossy "
            "copies and a re-rendered mixed image would differ from `in9-build export --seed N`; export the "
            "data as PNG (the default)",
            argument="seeds",
        )
    for name in SEED_INPUTS:
        try:
            source.variant(name)
        except In9Error as err:
            raise In9Error(
                f"{given}: re-rendering the mixed variants needs the data's fg_mask and only_bg_t configs "
                f"({err})",
                argument="seeds",
            ) from None


class RunImages:
    """Decoded pixels for one run or sweep, and the seeded mixed variants rendered from them."""

    def __init__(self, source: DataSource, store: PixelStore, *, shared: bool) -> None:
        self.source, self.store, self.shared = source, store, shared

    def decoded(self, variant: str, column: str = "image") -> StoredArrays:
        """Column ``column`` of the (limited) ``variant``, decoded once."""
        return self.store.get(
            f"{variant}/{column}", lambda: self.store.write(self.source.variant(variant), column)
        )

    def for_prediction(self, variant: str) -> StoredImages | None:
        """The prediction loader's items for ``variant`` from the store; None when not shared (the loop then
        decodes while it predicts, which is faster for a single pass)."""
        return StoredImages(self.decoded(variant)) if self.shared else None

    def _full_backgrounds(self) -> tuple[StoredArrays, dict[str, int]]:
        # With a limit, a draw over the whole split can pick any background: decode the whole pool once.
        if self.source.limit is None:
            images, ds = self.decoded("only_bg_t"), self.source.variant("only_bg_t")
        else:
            ds = self.source.full_variant("only_bg_t")
            images = self.store.get("only_bg_t/full", lambda: self.store.write(ds))
        return images, {image_id: i for i, image_id in enumerate(ds["image_id"])}

    def seeded(self, variant: str, seed: int) -> SeededVariant:
        """Mixed ``variant`` drawn with ``seed`` for the foregrounds of the (limited) fg_mask config."""
        if variant not in MIXED_VARIANTS:
            raise ValueError(f"seeded: {variant!r} is not a mixed variant")
        full = self.source.full_variant("fg_mask").select_columns(["image_id", "label"]).to_dict()
        labels = dict(zip(full["image_id"], full["label"], strict=True))
        fg_ids = list(self.source.variant("fg_mask")["image_id"])
        plan = mixed_plan(labels, fg_ids, seed, variant)
        backgrounds, bg_index = self._full_backgrounds()
        pairs = [(i, bg_index[row["bg_image_id"]]) for i, row in enumerate(plan)]
        images = SeededImages(self.decoded("fg_mask"), self.decoded("fg_mask", "mask"), backgrounds, pairs)
        rows = {key: [row[key] for row in plan] for key in plan[0]} if plan else _empty_rows()
        return SeededVariant(variant, seed, rows, images, self._fingerprint(variant, seed))

    def _fingerprint(self, variant: str, seed: int) -> str | None:
        if self.source.limit is not None:
            return None
        parts = {"variant": variant, "seed": seed, **{v: self.source.fingerprint(v) for v in SEED_INPUTS}}
        return "sha256:" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def close(self) -> None:
        self.store.close()


def _empty_rows() -> dict[str, list]:
    return {key: [] for key in ("label", "image_id", "fg_image_id", "bg_image_id", "bg_label")}
