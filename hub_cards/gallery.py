"""The variant gallery of the dataset card: the same foregrounds across every config, made from the data."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from in9_builder.classes import CONFIGS, MIXED_VARIANTS
from in9_builder.errors import In9Error

GALLERY_FILENAME = "gallery.png"
_HEADER = 18
_PAD = 2
_BACKGROUND = (255, 255, 255)
_MISSING = (200, 200, 200)


def _to_pil(value: Any) -> Image.Image:
    """A row's image as stored by datasets (``{"bytes", "path"}``), raw bytes, or a PIL image."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, Mapping):
        value = value.get("bytes")
    if isinstance(value, (bytes, bytearray)):
        return Image.open(io.BytesIO(value))
    raise TypeError(f"not an image: {type(value).__name__}")


def make_gallery(
    images: Mapping[str, Sequence[Image.Image | None]], out: str | Path, *, tile: int = 96
) -> Path:
    """Draw a grid, one column per config (its name as header), one row per example; ``None`` cells are grey.

    Deterministic: the same images give a byte-identical PNG."""
    columns = list(images)
    if not columns:
        raise In9Error("gallery: no configs to draw")
    num_rows = max(len(v) for v in images.values())
    width = len(columns) * (tile + _PAD) + _PAD
    height = _HEADER + num_rows * (tile + _PAD) + _PAD
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for col, name in enumerate(columns):
        x = _PAD + col * (tile + _PAD)
        draw.text((x + 2, 3), name, fill=(0, 0, 0))
        for row in range(num_rows):
            y = _HEADER + _PAD + row * (tile + _PAD)
            cell = images[name][row] if row < len(images[name]) else None
            if cell is None:
                canvas.paste(Image.new("RGB", (tile, tile), _MISSING), (x, y))
                continue
            if cell.mode in ("1", "L", "P", "I", "I;16") and name == "fg_mask":
                # Masks are stored 0/1: stretch to black/white so they are visible.
                cell = cell.convert("L").point(lambda v: 255 if v else 0)
            canvas.paste(cell.convert("RGB").resize((tile, tile), Image.Resampling.NEAREST), (x, y))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, format="PNG", optimize=False)
    return out


def _key(config: str) -> str:
    return "fg_image_id" if config in MIXED_VARIANTS else "image_id"


def gallery_from_rows(
    rows_by_config: Mapping[str, Iterable[Mapping[str, Any]]],
    out: str | Path,
    *,
    examples: int = 3,
    tile: int = 96,
) -> Path:
    """The gallery from rows as the configs store them (``image``, ``image_id``, ``label``; mixed rows also
    ``fg_image_id``; ``fg_mask`` rows ``mask``). Examples: the first ``original`` image of each of the first
    ``examples`` classes, followed through every config by foreground id."""
    tables = {name: list(rows) for name, rows in rows_by_config.items()}
    if "original" not in tables:
        raise In9Error("gallery: the 'original' config is needed to choose the examples")
    first_per_class: dict[int, str] = {}
    for row in sorted(tables["original"], key=lambda r: (r["label"], r["image_id"])):
        first_per_class.setdefault(int(row["label"]), row["image_id"])
    ids = [first_per_class[c] for c in sorted(first_per_class)][:examples]
    columns: dict[str, list[Image.Image | None]] = {}
    for name in [c for c in CONFIGS if c in tables]:
        by_id = {r.get(_key(name)): r for r in tables[name]}
        column = "mask" if name == "fg_mask" else "image"
        columns[name] = [_to_pil(by_id[i][column]) if i in by_id else None for i in ids]
    return make_gallery(columns, out, tile=tile)


def _read_config(folder: Path, config: str, ids: Sequence[str] | None) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    shards = sorted((folder / config).glob("test-*.parquet"))
    rows: list[dict[str, Any]] = []
    for shard in shards:
        names = pq.read_schema(shard).names
        key = _key(config) if _key(config) in names else "image_id"
        filters = [(key, "in", list(ids))] if ids is not None else None
        rows += pq.read_table(shard, filters=filters).to_pylist()
    return rows


def gallery_from_export(
    export_dir: str | Path, out: str | Path | None = None, *, examples: int = 3, tile: int = 96
) -> Path:
    """The gallery PNG of an export folder (``<config>/test-*.parquet``); written to ``out`` or
    ``<export_dir>/gallery.png``. Reads only the example rows of each config."""
    folder = Path(export_dir)
    if not (folder / "original").is_dir():
        raise In9Error(f"{folder}: no 'original' config folder; pass an in9-build export folder")
    import pyarrow.parquet as pq

    labels: dict[str, int] = {}
    for shard in sorted((folder / "original").glob("test-*.parquet")):
        table = pq.read_table(shard, columns=["image_id", "label"]).to_pydict()
        labels.update(zip(table["image_id"], table["label"], strict=True))
    first_per_class: dict[int, str] = {}
    for image_id, label in sorted(labels.items(), key=lambda kv: (kv[1], kv[0])):
        first_per_class.setdefault(int(label), image_id)
    ids = [first_per_class[c] for c in sorted(first_per_class)][:examples]
    rows = {c: _read_config(folder, c, ids) for c in CONFIGS if (folder / c).is_dir()}
    return gallery_from_rows(
        rows, out if out is not None else folder / GALLERY_FILENAME, examples=examples, tile=tile
    )
