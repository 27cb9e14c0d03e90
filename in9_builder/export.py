"""Export IN-9 as a Hub-ready dataset repository; the only module that writes an export folder.

```
OUT/README.md                              dataset card: YAML configs: + dataset_info:
OUT/in9_export.json                        machine-readable summary with a fingerprint per config
OUT/<config>/test-00000-of-0000N.parquet   image bytes embedded (and train-... where the source has train)
```
Atomic (``in9_builder.atomic.replace_folder``): everything is written into a hidden sibling folder that is
swapped in only when complete; a failure or an interrupt removes it and leaves an existing ``OUT`` untouched.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import huggingface_hub
from datasets import DownloadConfig, DownloadManager
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCardData

from hub_cards import (
    DEFAULT_DATASET_ID,
    GALLERY_FILENAME,
    gallery_from_export,
    render_dataset_card,
    render_eval_yaml,
)

from . import __version__
from .atomic import replace_folder
from .builder import In9, edition_seed
from .classes import CONFIGS, parse_variants
from .encode import check_image_format
from .errors import In9Error
from .fingerprint import parquet_fingerprint
from .sources import get_source, resolve_source_kwargs

SCHEMA = "in9-export/1"
SUMMARY_FILE = "in9_export.json"
MAX_SHARD_SIZE = "500MB"


def _move_shards(config_dir: Path, split: str) -> list[str]:
    """Rename datasets' ``in9-<split>[-k-of-n].parquet`` files to ``<split>-0000k-of-0000N.parquet``."""
    produced = sorted(config_dir.glob(f"in9-{split}*.parquet"))
    names = []
    for index, path in enumerate(produced):
        name = f"{split}-{index:05d}-of-{len(produced):05d}.parquet"
        path.rename(config_dir / name)
        names.append(name)
    return names


def _export_config(config: str, config_dir: Path, builder_kwargs: dict, num_proc: int) -> dict[str, Any]:
    builder = In9(config_name=config, **builder_kwargs)
    builder.download_and_prepare(
        output_dir=str(config_dir),
        file_format="parquet",
        num_proc=num_proc if num_proc > 1 else None,
        max_shard_size=MAX_SHARD_SIZE,
    )
    info = builder.info
    num_rows: dict[str, int] = {}
    files: dict[str, list[str]] = {}
    fingerprints: dict[str, str] = {}
    for split in info.splits:
        files[split] = _move_shards(config_dir, split)
        fingerprints[split], num_rows[split] = parquet_fingerprint(str(config_dir / f) for f in files[split])
    for leftover in config_dir.iterdir():  # dataset_info.json, lock files: not part of the repository
        if leftover.suffix != ".parquet":
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return {
        "fingerprint": fingerprints["test"] if "test" in fingerprints else next(iter(fingerprints.values())),
        "fingerprints": fingerprints,
        "num_rows": num_rows,
        "files": files,
        "info": info,
    }


def _card_data(results: dict[str, dict], default: str) -> dict:
    """The YAML front matter: ``configs:`` (data files per split) and ``dataset_info:``."""
    card_data = DatasetCardData()  # license, pretty name, tags: hub_cards' defaults for the source
    card_data.configs = [
        {
            "config_name": config,
            "data_files": [{"split": split, "path": f"{config}/{split}-*"} for split in result["num_rows"]],
            **({"default": True} if config == default else {}),
        }
        for config, result in results.items()
    ]
    DatasetInfosDict({config: result["info"] for config, result in results.items()}).to_dataset_card_data(
        card_data
    )
    return card_data.to_dict()


def _card_context(summary: dict, gallery: str | None) -> dict:
    """The template context of ``hub_cards/dataset_card.md``: the ``in9_export.json`` summary (schema, source,
    edition, seed, source_params, image_format, configs {name: {fingerprint, fingerprints, num_rows}},
    package_version) plus ``gallery`` (the gallery image's file name in the folder, or None).
    ``hub_cards.dataset_card_context`` completes it with everything that does not depend on the export."""
    return {**summary, "gallery": gallery}


def _write_repo_files(folder: Path, results: dict[str, dict], summary: dict, dataset_id: str | None) -> None:
    """README.md (the card), eval.yaml (one leaderboard task per variant, the Hub's format), gallery.png."""
    dataset_id = dataset_id or DEFAULT_DATASET_ID
    (folder / "eval.yaml").write_text(render_eval_yaml(dataset_id, list(results)))
    gallery = None
    if "original" in results and "test" in results["original"]["num_rows"]:
        gallery_from_export(folder, folder / GALLERY_FILENAME)
        gallery = GALLERY_FILENAME
    default = "original" if "original" in results else next(iter(results))
    context = {**_card_context(summary, gallery), "dataset_id": dataset_id}
    (folder / "README.md").write_text(render_dataset_card(_card_data(results, default), context))


def export(
    source: str,
    out: str | os.PathLike,
    *,
    seed: int | None = None,
    variants: Sequence[str] | str | None = None,
    data_dir: str | os.PathLike | None = None,
    source_kwargs: dict | None = None,
    num_proc: int = 2,
    overwrite: bool = False,
    image_format: str = "png",
    push_to_hub: str | None = None,
    splits: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Write the Hub-ready IN-9 folder ``out`` from ``source`` and return its path.

    ``seed`` draws the mixed backgrounds; ``seed=None`` is the official edition (release files byte for byte;
    seed 0 for sources without official files). The source's own parameters (the synthetic ``scene_seed``,
    sizes, counts) go in ``source_kwargs`` and are recorded as ``source_params``. ``variants`` selects configs
    (default all 9); ``splits`` selects splits (default every split the source has). ``num_proc`` worker
    processes generate each config; the output does not depend on it.
    """
    out = Path(out).absolute()
    configs = parse_variants(variants, CONFIGS)
    check_image_format(image_format)
    if num_proc < 1:
        raise In9Error(f"num_proc={num_proc}: use 1 or more", argument="num_proc")
    if push_to_hub is not None:
        _check_repo_id(push_to_hub)
    if out.exists() and not out.is_dir():
        raise In9Error(f"out={out}: exists and is not a folder; choose another", argument="out")

    builder_kwargs = {
        "source": source,
        "seed": seed,
        "data_dir": None if data_dir is None else str(data_dir),
        "source_kwargs": dict(source_kwargs or {}),
        "image_format": image_format,
        "splits": None if splits is None else tuple(splits),
        "cache_dir": None if cache_dir is None else str(cache_dir),
    }
    with replace_folder(out, overwrite=overwrite, what="export") as staging:
        # Resolve the data location once (a URL or tarball is downloaded / extracted here, then reused).
        probe = In9(config_name=configs[0], **builder_kwargs)
        resolved = resolve_source_kwargs(
            source, builder_kwargs["data_dir"], builder_kwargs["source_kwargs"], _download_manager(probe)
        )
        source_obj = get_source(source, **resolved)
        builder_kwargs.update(data_dir=None, source_kwargs=resolved)
        used_seed = edition_seed(source_obj, seed)
        results = {c: _export_config(c, staging / c, builder_kwargs, num_proc) for c in configs}
        summary = {
            "schema": SCHEMA,
            "source": source,
            "edition": "official" if used_seed is None else "seeded",
            "seed": used_seed,
            "source_params": source_obj.params(),
            "image_format": image_format,
            "configs": {
                c: {
                    "fingerprint": r["fingerprint"],
                    "fingerprints": r["fingerprints"],
                    "num_rows": r["num_rows"],
                }
                for c, r in results.items()
            },
            "package_version": __version__,
        }
        (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
        _write_repo_files(staging, results, summary, dataset_id=push_to_hub)
        for leftover in staging.glob("*.lock"):  # datasets' builder locks, not part of the repository
            leftover.unlink()
    if push_to_hub:
        push_folder(out, push_to_hub)
    return out


def _download_manager(builder):
    """A download manager that caches where the builder's own would (``<cache_dir>/downloads``)."""
    config = DownloadConfig(cache_dir=builder._cache_downloaded_dir, use_etag=False)
    return DownloadManager(dataset_name="in9", download_config=config)


def read_summary(export_dir: str | os.PathLike) -> dict:
    """The ``in9_export.json`` of an export folder."""
    path = Path(export_dir) / SUMMARY_FILE
    if not path.is_file():
        raise In9Error(f"{path} not found: {export_dir} is not an in9-build export (run `in9-build export`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise In9Error(f"{path} is not valid JSON ({err}); re-run `in9-build export`") from None


def _check_repo_id(repo_id: str) -> None:
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise In9Error(
            f"push_to_hub={repo_id!r}: give the dataset repository as ORG/NAME, e.g. my-org/in9",
            argument="push_to_hub",
        )


def push_folder(folder: Path, repo_id: str) -> str:
    """Upload an export folder as the Hub dataset repository ``repo_id`` (needs network and a token)."""
    _check_repo_id(repo_id)
    api = huggingface_hub.HfApi()  # looked up at call time: tests stand a fake in for it
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id, folder_path=str(folder), repo_type="dataset", commit_message="in9-build export"
    )
    return str(commit)
