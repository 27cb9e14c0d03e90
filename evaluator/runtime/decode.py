"""Encoded image cell -> uint8 (H, W, 3) RGB array: the pixels ``datasets.Image`` decodes, decoded faster.

The one decoder of the evaluator: the prediction loader (:class:`DecodedImages`) and the challenge's pool and
foregrounds (:func:`decode_column`) both decode through :func:`decode_rgb`. Decoding is most of what
``in9-eval`` adds to a small model's forward on CPU. Plain 8-bit RGB PNGs and 8-bit three-component JPEGs
without EXIF or Adobe markers (all of IN-9, release and synthetic) are decoded by OpenCV when it is installed:
one C call that releases the GIL, so decoding threads scale with cores (``benchmarks/bench_eval.py`` prints
the decoding cost per image). Both wrap libjpeg-turbo / libpng with their default settings, and the
pixels are equal (tested against ``datasets.Image.decode_example`` on every case below). Anything else (other
modes and bit depths, EXIF orientation, CMYK, paths without bytes) goes through ``decode_example`` itself.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import datasets
import numpy as np
import torch

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_FRAMES = (0xC0, 0xC1, 0xC2)  # baseline, extended and progressive Huffman frames
JPEG_STANDALONE = (0x01, *range(0xD0, 0xD8))  # markers without a length field


@functools.cache
def _opencv():
    try:
        import cv2
    except ImportError:
        return None
    if not hasattr(cv2, "IMREAD_COLOR_RGB"):  # OpenCV < 4.10 decodes only to BGR
        return None
    cv2.setNumThreads(1)  # the decoding threads are the parallelism
    return cv2


def _plain_png(data: bytes) -> bool:
    """8-bit RGB, not interlaced, no eXIf chunk (datasets would apply its orientation)."""
    return (
        data[:8] == PNG_SIGNATURE
        and data[12:16] == b"IHDR"
        and data[24:26] == b"\x08\x02"
        and data[28] == 0
        and b"eXIf" not in data
    )


def _plain_jpeg(data: bytes) -> bool:
    """8-bit, 3 components, Huffman coded, no EXIF (orientation) or Adobe (colour transform) segment."""
    if data[:2] != b"\xff\xd8":
        return False
    pos, end = 2, len(data) - 4
    while pos < end:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in JPEG_STANDALONE:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos + 4 : pos + 2 + length]
        exif = marker == 0xE1 and segment.startswith(b"Exif")
        if exif or (marker == 0xEE and segment.startswith(b"Adobe")):
            return False
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            return marker in JPEG_FRAMES and segment[:1] == b"\x08" and segment[5:6] == b"\x03"
        pos += 2 + length
    return False


def opencv_decodable(data: bytes) -> bool:
    """Whether OpenCV decodes ``data`` to exactly the pixels of ``datasets.Image`` + ``convert("RGB")``."""
    return _plain_png(data) or _plain_jpeg(data)


def decode_rgb(value: Any, feature: Any) -> np.ndarray:
    """One stored ``{bytes, path}`` cell of an ``Image`` column (``feature``) -> uint8 (H, W, 3) RGB."""
    data = value.get("bytes") if isinstance(value, dict) else None
    cv2 = _opencv()
    if cv2 is not None and data and feature.mode in (None, "RGB") and opencv_decodable(data):
        # RGB straight from the decoder: a reversed-channel view of BGR would make batching copy per pixel.
        flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
        rgb = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if rgb is not None:
            return rgb
    return to_uint8_hwc(feature.decode_example(value))


def to_uint8_hwc(image) -> np.ndarray:
    """A decoded PIL image -> uint8 (H, W, 3) array."""
    return np.asarray(image.convert("RGB") if image.mode != "RGB" else image)


def _undecoded(dataset, column: str):
    """``dataset`` with only ``column``, its images handed out as stored ``{bytes, path}`` (or None)."""
    dataset = dataset.select_columns([column])
    feature = dataset.features[column]
    if isinstance(feature, datasets.Image) and feature.decode:
        return dataset.cast_column(column, datasets.Image(mode=feature.mode, decode=False)), feature
    return dataset, None


def decode_column(dataset, column: str = "image") -> list[np.ndarray]:
    """Every image of ``column``: uint8 (H, W, 3) RGB for ``image``, (H, W) for a single-channel ``mask``."""
    raw, feature = _undecoded(dataset, column)
    values = raw[column] if len(raw) else []

    def one(value) -> np.ndarray:
        if column == "image":
            return decode_rgb(value, feature) if feature is not None else to_uint8_hwc(value)
        array = np.asarray(feature.decode_example(value) if feature is not None else value)
        return array[..., 0] if array.ndim == 3 else array

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1), thread_name_prefix="in9-decode") as pool:
        return list(pool.map(one, values))


class DecodedImages(torch.utils.data.Dataset):
    """Row index + uint8 image of a ``datasets.Dataset``; decoding happens here, in whichever thread asks.

    The stored ``{bytes, path}`` are handed out undecoded and decoded by :func:`decode_rgb`: the same pixels
    as datasets' decoding, without its serial loop. With ``threads > 1`` a batch is decoded by that many
    threads (the decoders release the GIL): for a run in the main process with a single inference stream;
    CPU runs with two streams decode with one thread each.
    """

    def __init__(self, dataset, column: str = "image", threads: int = 1) -> None:
        self.dataset, self.feature = _undecoded(dataset, column)
        self.column = column
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pool": None}  # a worker process makes its own

    def _decode(self, value) -> np.ndarray:
        return decode_rgb(value, self.feature) if self.feature is not None else to_uint8_hwc(value)

    def __getitem__(self, index: int):
        return index, self._decode(self.dataset[index][self.column])

    def __getitems__(self, indices: list[int]):
        values = self.dataset[list(indices)][self.column]
        if self.threads > 1 and len(values) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="in9-decode")
            arrays = list(self._pool.map(self._decode, values))
        else:
            arrays = [self._decode(value) for value in values]
        return list(zip(indices, arrays, strict=True))

    def close(self) -> None:
        """End the decode threads and drop the dataset: ``accelerator.prepare_data_loader`` keeps every loader
        it prepared (``Accelerator._dataloaders``), and through it this object, for the whole run; holding the
        rows here would keep each scored variant's memory map resident."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self.dataset = None


def collate(items):
    """(index, HWC image) items -> (indices, uint8 NCHW channels-last batch, or a list if sizes vary).

    np.stack of (H, W, 3) images then a permute gives an NCHW view in channels-last memory: one copy (numpy's
    stack is faster than torch.stack on uint8), in the layout convolutions like.
    """
    indices = torch.tensor([i for i, _ in items], dtype=torch.int64)
    images = [img for _, img in items]
    if all(img.shape == images[0].shape for img in images):
        return indices, torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return indices, [torch.from_numpy(np.array(img)).permute(2, 0, 1) for img in images]
