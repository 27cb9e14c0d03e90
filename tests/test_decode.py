"""The one decoder: datasets.Image + convert("RGB") pixels, through OpenCV only where they are equal."""

from __future__ import annotations

import io

import datasets
import numpy as np
import pytest
from PIL import Image

from evaluator.runtime import decode
from evaluator.runtime.decode import decode_rgb, opencv_decodable


def _pixels(shape, seed=0) -> np.ndarray:
    # Smooth gradients plus noise: chroma subsampling and every PNG filter type get exercised.
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    ramp = (np.add.outer(np.arange(h) * 3, np.arange(w) * 2) % 256).astype(np.int64)
    noise = rng.integers(0, 40, size=shape)
    base = ramp if len(shape) == 2 else ramp[..., None] * np.arange(1, shape[2] + 1)
    return ((base + noise) % 256).astype(np.uint8)


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _exif_rotated() -> tuple[Image.Image, Image.Exif]:
    image = Image.fromarray(_pixels((40, 56, 3)))
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise on display
    return image, exif


def cases() -> dict[str, tuple[bytes, bool]]:
    """name -> (encoded bytes, whether OpenCV may decode it)."""
    rgb = Image.fromarray(_pixels((48, 64, 3)))
    rotated, exif = _exif_rotated()
    cmyk = Image.fromarray(_pixels((32, 40, 3))).convert("CMYK")
    wide = _pixels((20, 24)).astype(np.uint16) * 257
    return {
        "png rgb": (_encode(rgb, "PNG"), True),
        "png rgb level 1": (_encode(rgb, "PNG", compress_level=1), True),
        "png rgba": (_encode(Image.fromarray(_pixels((48, 64, 4))), "PNG"), False),
        "png grey": (_encode(Image.fromarray(_pixels((48, 64))), "PNG"), False),
        "png palette": (_encode(rgb.quantize(64), "PNG"), False),
        "png 16-bit grey": (_encode(Image.fromarray(wide), "PNG"), False),
        "png exif": (_encode(rotated, "PNG", exif=exif), False),
        "jpeg q75": (_encode(rgb, "JPEG", quality=75), True),
        "jpeg q95 4:4:4": (_encode(rgb, "JPEG", quality=95, subsampling=0), True),
        "jpeg progressive": (_encode(rgb, "JPEG", quality=80, progressive=True), True),
        "jpeg grey": (_encode(Image.fromarray(_pixels((48, 64))), "JPEG"), False),
        "jpeg cmyk": (_encode(cmyk, "JPEG"), False),
        "jpeg exif orientation": (_encode(rotated, "JPEG", exif=exif), False),
    }


@pytest.mark.parametrize("name", list(cases()))
def test_decoded_pixels_equal_datasets_decoding(name):
    data, plain = cases()[name]
    assert opencv_decodable(data) is plain
    feature = datasets.Image()
    expected = np.asarray(feature.decode_example({"bytes": data, "path": None}).convert("RGB"))
    got = decode_rgb({"bytes": data, "path": None}, feature)
    assert got.dtype == np.uint8 and got.shape == expected.shape and got.shape[-1] == 3
    assert np.array_equal(got, expected)


def test_exif_orientation_is_applied_like_datasets():
    rotated, exif = _exif_rotated()
    got = decode_rgb({"bytes": _encode(rotated, "JPEG", exif=exif), "path": None}, datasets.Image())
    assert got.shape == (56, 40, 3)  # transposed, as datasets' exif_transpose does


def test_without_opencv_the_same_pixels_come_from_pillow(monkeypatch):
    data, _ = cases()["jpeg q75"]
    with_cv2 = decode_rgb({"bytes": data, "path": None}, datasets.Image())
    monkeypatch.setattr(decode, "_opencv", lambda: None)
    assert np.array_equal(decode_rgb({"bytes": data, "path": None}, datasets.Image()), with_cv2)


def test_opencv_is_used_for_plain_files():
    if decode._opencv() is None:
        pytest.skip("OpenCV (the toolkit extra) is not installed")
    assert opencv_decodable(cases()["png rgb"][0]) and opencv_decodable(cases()["jpeg q75"][0])


def test_paths_and_a_mode_other_than_rgb_use_datasets(tmp_path):
    data, _ = cases()["png rgb"]
    path = tmp_path / "a.png"
    path.write_bytes(data)
    expected = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(decode_rgb({"bytes": None, "path": str(path)}, datasets.Image()), expected)
    grey = decode_rgb({"bytes": data, "path": None}, datasets.Image(mode="L"))
    assert np.array_equal(grey, np.asarray(Image.open(path).convert("L").convert("RGB")))


def test_truncated_or_foreign_bytes_are_not_sniffed_as_plain():
    data, _ = cases()["jpeg q75"]
    assert not opencv_decodable(data[:40])
    assert not opencv_decodable(b"GIF89a" + data)
    assert not opencv_decodable(b"")
    png, _ = cases()["png rgb"]
    assert not opencv_decodable(png[:28] + b"\x01" + png[29:])  # the IHDR interlace flag (Adam7)
