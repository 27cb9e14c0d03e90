"""The release source: the original test tarball ``backgrounds_challenge_data.tar.gz``.

Given as a URL (the default; downloaded by the datasets download manager and cached), a local ``.tar.gz`` or
an extracted folder. Layout: ``bg_challenge/<variant>/val/<NN_name>/<stem>.JPEG``, masks
``bg_challenge/fg_mask/val/<NN_name>/<stem>.npy``. Official files are passed through byte for byte; the mixed
files' provenance is parsed from their names, ``fg_<stem>_bg_<stem>.JPEG``. Every check names the faulty file.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zlib
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import replace_folder
from ..classes import CLASS_FOLDERS, CONFIGS, MIXED_VARIANTS, NUM_CLASSES, mapped_wnids
from ..encode import encode_mask
from ..errors import In9Error
from ..scene import Scene

RELEASE_URL = "https://github.com/MadryLab/backgrounds_challenge/releases/download/data/backgrounds_challenge_data.tar.gz"
RELEASE_PER_CLASS = 450
TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_MIXED_NAME = re.compile(r"^fg_(?P<fg>.+?_\d+)_bg_(?P<bg>.+_\d+)$")


def parse_mixed_name(stem: str) -> tuple[str, str] | None:
    """``fg_<stem>_bg_<stem>`` -> (fg stem, bg stem), or None if the name does not have that form."""
    match = _MIXED_NAME.match(stem)
    return (match.group("fg"), match.group("bg")) if match else None


def _is_url(location: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*://", location) is not None


def _safe_extract(archive: tarfile.TarFile, target: Path) -> None:
    """Extract refusing absolute paths, ``..`` and links out of ``target`` (tarfile's "data" filter)."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(target, filter="data")
        return
    root = target.resolve()  # Python < 3.10.12 has no extraction filters: check the names ourselves
    for member in archive.getmembers():
        if not (target / member.name).resolve().is_relative_to(root) or member.issym() or member.islnk():
            raise tarfile.TarError(f"unsafe member {member.name!r}")
    archive.extractall(target)


def extract_tarball(tarball: Path, cache_root: Path) -> Path:
    """Extract ``tarball`` once into ``cache_root`` (keyed by its path, size and mtime) and return the folder.

    A truncated or corrupt archive raises In9Error and leaves no partial folder behind.
    """
    stat = tarball.stat()
    key = hashlib.sha256(f"{tarball.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_root / "in9_release" / key
    if (target / ".complete").is_file():
        return target
    # An incomplete folder (no .complete marker) is replaced; a failure leaves no partial folder behind.
    with replace_folder(target) as staging:
        try:
            with tarfile.open(tarball, "r:*") as archive:
                _safe_extract(archive, staging)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            raise In9Error(
                f"{tarball}: cannot read the tarball ({err.__class__.__name__}: {err}); "
                "it is truncated or corrupt, download it again"
            ) from None
        (staging / ".complete").touch()
    return target


def _cache_root(dl_manager) -> Path:
    cache_dir = getattr(getattr(dl_manager, "download_config", None), "cache_dir", None)
    if cache_dir is None:
        cache_dir = datasets.config.DOWNLOADED_DATASETS_PATH
    return Path(cache_dir)


def locate_release(location: str | Path | None, dl_manager=None) -> Path:
    """The extracted ``bg_challenge`` folder from a URL (default: the official one), a tarball or a folder."""
    location = RELEASE_URL if location is None else str(location)
    if _is_url(location):
        if dl_manager is None:
            dl_manager = datasets.DownloadManager(dataset_name="in9")
        try:
            downloaded = Path(dl_manager.download(location))
        except Exception as err:  # network errors come in many types; all mean the same to the user
            raise In9Error(
                f"cannot download the release from {location} ({err.__class__.__name__}); "
                "check the network or give `data_dir` a local backgrounds_challenge_data.tar.gz "
                "or its extracted folder",
                argument="data_dir",
            ) from None
        folder = extract_tarball(downloaded, _cache_root(dl_manager))
    else:
        path = Path(location).expanduser()
        if not path.exists():
            raise In9Error(
                f"data_dir={path}: no such file or folder; pass the release tarball or its folder",
                argument="data_dir",
            )
        folder = extract_tarball(path, _cache_root(dl_manager)) if path.is_file() else path
    for candidate in (folder / "bg_challenge", folder):
        if (candidate / "original").is_dir() or (candidate / "fg_mask").is_dir():
            return candidate
    raise In9Error(
        f"{folder}: no bg_challenge/ folder with the variant folders (original/, fg_mask/, ...); "
        "pass the release tarball or the folder it extracts to"
    )


class ReleaseSource:
    """The original release, read from ``root`` (the ``bg_challenge`` folder or its parent).

    per_class: the number of files each class folder must hold (450 in the release; fewer in fake ones).
    """

    name = "release"
    has_bboxes = False
    has_official_files = True

    def __init__(self, root: str | Path, per_class: int | None = RELEASE_PER_CLASS) -> None:
        root = Path(root)
        self.root = root / "bg_challenge" if (root / "bg_challenge").is_dir() else root
        self.per_class = per_class

    @classmethod
    def resolve_kwargs(cls, data_dir, source_kwargs: dict, dl_manager=None) -> dict:
        kwargs = dict(source_kwargs)
        location = data_dir if data_dir is not None else kwargs.pop("root", None)
        kwargs["root"] = str(locate_release(location, dl_manager))
        return kwargs

    def params(self) -> dict:
        return {"per_class": self.per_class}

    def splits(self) -> list[str]:
        return ["test"]

    # --- listing and checks ---------------------------------------------------------------------------------

    def _variant_dir(self, variant: str) -> Path:
        if variant not in CONFIGS:
            raise In9Error(f"unknown variant {variant!r}; choose from {', '.join(CONFIGS)}")
        folder = self.root / variant / "val"
        if not folder.is_dir():
            raise In9Error(
                f"{folder}: missing variant folder; the release has bg_challenge/{variant}/val/<NN_class>/"
            )
        return folder

    def _listing(self, variant: str) -> dict[str, tuple[int, Path]]:
        """``{stem: (label, file)}`` of a variant folder, checked: 9 class folders of ``per_class`` files."""
        cache = self.__dict__.setdefault("_listings", {})
        if variant in cache:
            return cache[variant]
        folder = self._variant_dir(variant)
        suffix = ".npy" if variant == "fg_mask" else ".JPEG"
        present = sorted(p.name for p in folder.iterdir() if p.is_dir())
        missing = [f for f in CLASS_FOLDERS if f not in present]
        if missing:
            raise In9Error(
                f"{folder / missing[0]}: missing class folder (expected the 9 folders 00_dog ... 08_fish)"
            )
        extra = [f for f in present if f not in CLASS_FOLDERS]
        if extra:
            raise In9Error(
                f"{folder / extra[0]}: unexpected class folder; IN-9 has exactly {', '.join(CLASS_FOLDERS)}"
            )
        listing: dict[str, tuple[int, Path]] = {}
        for label, class_folder in enumerate(CLASS_FOLDERS):
            files = sorted(p for p in (folder / class_folder).iterdir() if p.suffix == suffix)
            if self.per_class is not None and len(files) != self.per_class:
                raise In9Error(
                    f"{folder / class_folder}: holds {len(files)} {suffix} files, expected "
                    f"{self.per_class} per class; the release is incomplete (download it again) "
                    "or pass the right per_class"
                )
            for path in files:
                listing[path.stem] = (label, path)
        if variant == "fg_mask":
            originals = self._listing("original")
            orphan = next((stem for stem in listing if stem not in originals), None)
            if orphan is not None:
                raise In9Error(
                    f"{listing[orphan][1]}: mask without an original image "
                    f"(no original/val/.../{orphan}.JPEG)"
                )
        cache[variant] = listing
        return listing

    def official_ids(self, config: str, split: str = "test") -> list[str]:
        """The stems of a config's files sorted by (label, stem): the official row order."""
        self._check_split(split)
        listing = self._listing(config)
        return sorted(listing, key=lambda stem: (listing[stem][0], stem))

    def labels(self, split: str = "test") -> dict[str, int]:
        """``{stem: label}`` of the scenes: every image that has a mask."""
        self._check_split(split)
        return {stem: label for stem, (label, _) in self._listing("fg_mask").items()}

    def _check_split(self, split: str) -> None:
        if split != "test":
            raise In9Error(
                f"the release has only the test split (its folders are called val/), not {split!r}"
            )

    # --- reading --------------------------------------------------------------------------------------------

    @staticmethod
    def _read_image(path: Path) -> tuple[bytes, np.ndarray]:
        """The file's bytes and its decoded RGB pixels; a corrupt or truncated file is a clear error."""
        data = path.read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (OSError, UnidentifiedImageError, SyntaxError) as err:
            raise In9Error(
                f"{path}: corrupt or truncated image ({err}); download the release again"
            ) from None
        return data, pixels

    @staticmethod
    def _read_mask(path: Path, shape: tuple[int, int], image_path: Path) -> np.ndarray:
        try:
            mask = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise In9Error(f"{path}: unreadable mask ({err}); download the release again") from None
        if mask.shape != shape:
            raise In9Error(
                f"{path}: mask shape {mask.shape} differs from its image {image_path.name} {shape}; "
                "the mask must be H x W like the original"
            )
        if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
            bad = np.unique(mask[~np.isin(mask, (0, 1))])[:3].tolist()
            raise In9Error(f"{path}: mask values must be 0/1 (1 = foreground), found {bad}")
        return mask.astype(np.uint8)

    def scene(self, split: str, image_id: str) -> Scene:
        """The original image and its mask (no bounding box: the release has none)."""
        self._check_split(split)
        label, mask_path = self._listing("fg_mask")[image_id]
        _, image_path = self._listing("original")[image_id]
        _, pixels = self._read_image(image_path)
        mask = self._read_mask(mask_path, pixels.shape[:2], image_path)
        return Scene(image_id, label, pixels, mask, None)

    def scenes(self, split: str = "test") -> Iterator[Scene]:
        for image_id in self._sorted_scene_ids(split):
            yield self.scene(split, image_id)

    def _sorted_scene_ids(self, split: str) -> list[str]:
        labels = self.labels(split)
        return sorted(labels, key=lambda stem: (labels[stem], stem))

    def background(self, split: str, image_id: str) -> np.ndarray:
        """The official Only-BG-T image of ``image_id`` (the pool of the re-rendered mixed variants)."""
        self._check_split(split)
        listing = self._listing("only_bg_t")
        if image_id not in listing:
            raise In9Error(
                f"{self.root / 'only_bg_t' / 'val'}: no Only-BG-T image {image_id}.JPEG "
                "for a mixed background"
            )
        return self._read_image(listing[image_id][1])[1]

    @cached_property
    def _wnid_labels(self) -> dict[str, int]:
        # Fine-grained wnid -> IN-9 label: from the release's own stems first, then the ImageNet mapping.
        table = dict(mapped_wnids())
        for variant in ("original", "fg_mask"):
            try:
                listing = self._listing(variant)
            except In9Error:
                continue
            for stem, (label, _) in listing.items():
                table.setdefault(stem.split("_")[0], label)
        return table

    def _bg_label(self, bg_stem: str, variant: str, fg_label: int) -> int:
        if variant == "mixed_next":
            return (fg_label + 1) % NUM_CLASSES
        if variant == "mixed_same":
            return fg_label
        return self._wnid_labels.get(bg_stem.split("_")[0], -1)

    def official_rows(self, config: str, split: str, ids: list[str]) -> Iterator[dict[str, Any]]:
        """The rows of ``config`` for file stems ``ids``, the files' bytes unchanged."""
        listing = self._listing(config)
        for stem in ids:
            label, path = listing[stem]
            if config == "fg_mask":
                image_path = self._listing("original")[stem][1]
                data, pixels = self._read_image(image_path)
                mask = self._read_mask(path, pixels.shape[:2], image_path)
                yield {
                    "image": {"bytes": data, "path": image_path.name},
                    "mask": encode_mask(mask),
                    "label": label,
                    "image_id": stem,
                }
                continue
            data, _ = self._read_image(path)
            row: dict[str, Any] = {
                "image": {"bytes": data, "path": path.name},
                "label": label,
                "image_id": stem,
            }
            if config in MIXED_VARIANTS:
                parsed = parse_mixed_name(stem)
                if parsed is None:
                    raise In9Error(f"{path}: a mixed file must be named fg_<stem>_bg_<stem>.JPEG")
                row["fg_image_id"], row["bg_image_id"] = parsed
                row["bg_label"] = self._bg_label(parsed[1], config, label)
            yield row


__all__ = ["RELEASE_URL", "ReleaseSource", "locate_release", "parse_mixed_name"]
