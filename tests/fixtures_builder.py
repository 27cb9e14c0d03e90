"""Session fixtures for the builder tests (and for every area that needs IN-9 data).

``synthetic_export``: a tiny export of the synthetic source (all 9 configs, test and train splits, 4 scenes
per class, 64 px, seed 0), built once per session; its value is the Path of the folder named ``in9``.
``make_synthetic_export(tmp_dir, ...)``: the same, callable with other sizes or seeds.
``fail_renaming_into(target)``: the first rename onto ``target`` fails (a replacement stopped midway).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SYNTHETIC_PER_CLASS = 4
SYNTHETIC_SIZE = 64


def make_synthetic_export(
    tmp_dir: str | Path,
    per_class: int = SYNTHETIC_PER_CLASS,
    size: int = SYNTHETIC_SIZE,
    seed: int | None = 0,
    *,
    scene_seed: int = 0,
    train_per_class: int | None = None,
    variants=None,
    num_proc: int = 1,
    bg_correlation: float = 0.9,
) -> Path:
    """Export the synthetic source into ``tmp_dir/in9`` (its datasets cache: ``tmp_dir/hf_cache``).

    ``seed`` draws the mixed backgrounds, ``scene_seed`` the scenes. ``train_per_class=None`` gives a train
    split of the same size as test, 0 gives none.
    """
    from in9_builder.export import export

    tmp_dir = Path(tmp_dir)
    return export(
        "synthetic",
        tmp_dir / "in9",
        seed=seed,
        variants=variants,
        source_kwargs={
            "per_class": per_class,
            "size": size,
            "scene_seed": scene_seed,
            "train_per_class": train_per_class,
            "bg_correlation": bg_correlation,
        },
        num_proc=num_proc,
        cache_dir=tmp_dir / "hf_cache",
    )


@pytest.fixture(scope="session")
def synthetic_export(tmp_path_factory) -> Path:
    """A small synthetic export (9 configs, test + train, 4 per class, 64 px, seed 0): the ``in9`` folder."""
    return make_synthetic_export(tmp_path_factory.mktemp("synthetic_export"))


@pytest.fixture
def fail_renaming_into(monkeypatch):
    """``fail(target)``: the first ``os.rename`` onto ``target`` (the new output going in) raises ``OSError``;
    later ones (a rollback) work. Returns the list of the sources whose rename failed."""

    def fail(target) -> list:
        real_rename, failed = os.rename, []

        def rename(src, dst, *args, **kwargs):
            if os.fspath(dst) == os.fspath(target) and not failed:
                failed.append(src)
                raise OSError("disk gone")
            return real_rename(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "rename", rename)
        return failed

    return fail
