"""Sources of IN-9 scenes and their registry.

A source is any object with:
  name: str; has_bboxes: bool; has_official_files: bool
  splits() -> list[str]                        # "test", and "train" where the source has one
  labels(split) -> dict[str, int]              # {image_id: IN-9 label}, cheap (no pixels)
  scene(split, image_id) -> Scene              # random access: mixed variants fetch backgrounds by id
  scenes(split) -> Iterator[Scene]             # sorted by (label, image_id), one at a time
  params() -> dict                             # what determines the data, recorded in in9_export.json
Optional:
  background(split, image_id) -> ndarray       # a scene's Only-BG-T image (default: rendered from scene())
  resolve_kwargs(data_dir, source_kwargs, dl_manager) -> dict   # classmethod: data location -> kwargs
Sources with official files (the release) also have ``official_ids(config, split)`` and
``official_rows(config, split, ids)``; see ``release.py``.

Register a new source with one line in ``_REGISTRY``; the builder and the export need no change.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import In9Error
from ..render import render_variant
from ..scene import Scene

# Configs taken from the official files even in a seeded edition of a source that has them: the release has
# no bounding boxes, so only_bg_b / only_bg_t cannot be re-rendered, and original / fg_mask are the inputs.
OFFICIAL_WHEN_SEEDED: tuple[str, ...] = ("original", "only_bg_b", "only_bg_t", "fg_mask")

# name -> "module:attribute" of the source class, imported on first use (a source's module is loaded only when
# it is asked for, and plug-ins register the same way).
_REGISTRY: dict[str, str] = {
    "synthetic": "in9_builder.sources.synthetic:SyntheticSource",
    "release": "in9_builder.sources.release:ReleaseSource",
    "imagenet": "in9_builder.sources.imagenet:ImagenetSource",
}


@runtime_checkable
class Source(Protocol):
    name: str
    has_bboxes: bool
    has_official_files: bool

    def splits(self) -> list[str]: ...

    def labels(self, split: str) -> dict[str, int]: ...

    def scene(self, split: str, image_id: str) -> Scene: ...

    def params(self) -> dict: ...


def source_names() -> list[str]:
    return sorted(_REGISTRY)


def register_source(name: str, target: str) -> None:
    """Register ``"module:Class"`` under ``name`` (plug-ins; the package's own sources are listed above)."""
    _REGISTRY[name] = target


def source_class(name: str) -> type:
    if name not in _REGISTRY:
        raise In9Error(f"unknown source {name!r}; choose one of {', '.join(source_names())}")
    module_name, attribute = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), attribute)


def get_source(name: str, **kwargs: Any) -> Source:
    """An instance of the source registered as ``name``."""
    return source_class(name)(**kwargs)


def resolve_source_kwargs(
    name: str, data_dir: str | None, source_kwargs: dict | None, dl_manager=None
) -> dict:
    """The source's constructor kwargs with the data location resolved (URL / tarball -> local folder)."""
    cls = source_class(name)
    kwargs = dict(source_kwargs or {})
    if hasattr(cls, "resolve_kwargs"):
        return cls.resolve_kwargs(data_dir, kwargs, dl_manager)
    if data_dir is not None:
        kwargs["data_dir"] = str(data_dir)
    return kwargs


def background_of(source: Source, split: str, image_id: str) -> np.ndarray:
    """The Only-BG-T image of ``image_id``: the pool that mixed variants draw from."""
    if hasattr(source, "background"):
        return source.background(split, image_id)
    return render_variant("only_bg_t", source.scene(split, image_id))
