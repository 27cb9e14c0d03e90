"""Decoded images kept for the length of a run: each image column decoded once, read by every model.

A sweep (several models, several background draws) scores the same variants many times. Decoding a PNG costs
about as much CPU as a small model's forward, so :class:`PixelStore` decodes each column once (with
:func:`evaluator.runtime.decode.decode_column`, the evaluator's one decoder) into a memory-mapped file in a
private temporary folder; every model then reads views of those pixels. The operating system keeps the pages
in memory while there is room and reads them back from disk when there is not, so a sweep over the full
release (a few GB of pixels) does not have to fit in RAM. The folder is removed by :meth:`PixelStore.close`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from evaluator.runtime.decode import decode_column

DECODE_CHUNK = 256  # rows decoded (and held) at a time while a column is written


class StoredArrays(Sequence):
    """Arrays of possibly different shapes in one flat memory-mapped uint8 file: ``stored[i]`` is a view."""

    def __init__(self, path: Path, offsets: np.ndarray, shapes: list[tuple[int, ...]]) -> None:
        self.path, self.offsets, self.shapes = path, offsets, shapes
        size = int(offsets[-1]) if len(offsets) else 0
        self._flat = (
            np.memmap(path, dtype=np.uint8, mode="r", shape=(size,)) if size else np.zeros(0, np.uint8)
        )

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, index: int) -> np.ndarray:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return self._flat[start:end].reshape(self.shapes[index])

    def stack(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """The arrays ``indices`` (all by default) as one (n, ...) array; they must share a shape."""
        rows = range(len(self)) if indices is None else indices
        return np.stack([self[i] for i in rows]) if len(rows) else np.zeros((0,), np.uint8)


class PixelStore:
    """Decoded image columns of one run, keyed by name, in memory-mapped files under a temporary folder."""

    def __init__(self, parent: str | Path | None = None) -> None:
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="in9-pixels-", dir=parent))
        self._columns: dict[str, StoredArrays] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._columns

    def get(self, key: str, make: Callable[[], StoredArrays]) -> StoredArrays:
        """The arrays under ``key``, made by ``make`` (``lambda: store.write(ds)``) the first time."""
        if key not in self._columns:
            self._columns[key] = make()
        return self._columns[key]

    def write(self, dataset, column: str = "image") -> StoredArrays:
        """Column ``column`` of ``dataset`` decoded into a new file: RGB (H, W, 3), or (H, W) masks."""
        path = self.folder / f"{len(self._columns):04d}.u8"
        offsets, shapes = [0], []
        with open(path, "wb") as out:
            for start in range(0, len(dataset), DECODE_CHUNK):
                chunk = dataset.select(range(start, min(start + DECODE_CHUNK, len(dataset))))
                for array in decode_column(chunk, column):
                    out.write(np.ascontiguousarray(array).tobytes())
                    shapes.append(array.shape)
                    offsets.append(offsets[-1] + array.size)
        return StoredArrays(path, np.asarray(offsets, dtype=np.int64), shapes)

    def close(self) -> None:
        self._columns.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PixelStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StoredImages(torch.utils.data.Dataset):
    """Row index + uint8 (H, W, 3) image, the items :class:`~evaluator.runtime.decode.DecodedImages` hands
    the prediction loader, from pixels decoded before (``images[i]`` is any indexable of arrays)."""

    def __init__(self, images) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return index, self.images[index]

    def __getitems__(self, indices: list[int]):
        return [(i, self.images[i]) for i in indices]

    def close(self) -> None:
        self.images = None
