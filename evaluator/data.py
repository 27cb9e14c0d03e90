"""Where the evaluator's images come from: ``open_data(data)`` -> a :class:`DataSource` of IN-9 variants.

``data`` is one of: a local export folder (``in9-build export``; has ``in9_export.json``), a local
release tarball or extracted release folder, ``synthetic`` (optionally ``synthetic:per_class=8,size=64``),
a Hub dataset id (``org/in9``), or ``in9`` (default): the official release through the builder, downloaded
once and cached.
Every variant's content fingerprint is recomputed from the rows evaluated, with the builder's function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import datasets

from in9_builder.builder import In9
from in9_builder.classes import CONFIGS, NUM_CLASSES
from in9_builder.errors import In9Error
from in9_builder.export import read_summary
from in9_builder.fingerprint import dataset_fingerprint

OFFICIAL = "in9"


def first_per_class(labels: list[int], limit: int) -> list[int]:
    """Row indices of the first ``limit`` rows of each class, in row order."""
    seen = [0] * NUM_CLASSES
    keep = []
    for i, label in enumerate(labels):
        if seen[label] < limit:
            seen[label] += 1
            keep.append(i)
    return keep


class DataSource:
    """The variants of one IN-9 edition, loaded lazily; fingerprints are recomputed on first use."""

    def __init__(
        self,
        *,
        source: str,
        location: str,
        edition: str | None,
        seed: int | None,
        load: Callable[[str], datasets.Dataset],
        limit: int | None = None,
        expected: dict[str, str] | None = None,
        params: dict | None = None,
        image_format: str | None = "png",
    ) -> None:
        self.source, self.location, self.edition, self.seed = source, location, edition, seed
        self.limit = limit
        self.image_format = image_format  # how generated images were stored (None: unknown)
        self.params = params or {}
        self._load = load
        self._expected = expected or {}
        self._datasets: dict[str, datasets.Dataset] = {}
        self._full: dict[str, datasets.Dataset] = {}
        self._counts: dict[str, int] = {}
        self._fingerprints: dict[str, str] = {}

    def variant(self, name: str) -> datasets.Dataset:
        """The ``test`` split of config ``name`` (``fg_mask`` too), first ``limit`` rows per class if set."""
        if name not in CONFIGS:
            raise In9Error(f"unknown variant {name!r}; choose from {', '.join(CONFIGS)}")
        if name not in self._datasets:
            ds = self._load(name)
            if self.limit is not None:
                ds = ds.select(first_per_class(ds["label"], self.limit))
            self._datasets[name] = ds
        return self._datasets[name]

    def full_variant(self, name: str) -> datasets.Dataset:
        """Config ``name`` without the ``limit``: what a draw over the whole split needs."""
        if self.limit is None:
            return self.variant(name)
        if name not in self._full:
            self._full[name] = self._load(name)
        return self._full[name]

    def fingerprint(self, name: str) -> str:
        """``sha256:<hex>`` of the rows evaluated; checked against the export's record without a limit."""
        if name not in self._fingerprints:
            found = dataset_fingerprint(self.variant(name))
            expected = self._expected.get(name)
            if expected is not None and self.limit is None and found != expected:
                raise In9Error(
                    f"data={self.location}: config {name!r} has fingerprint {found}, but "
                    f"in9_export.json records {expected}; the export was modified, re-export it"
                )
            self._fingerprints[name] = found
        return self._fingerprints[name]

    def release(self, name: str) -> None:
        """Drop the loaded ``name`` (its memory map goes with it); a later ``variant(name)`` reloads it.

        The evaluator releases each variant once scored, so resident memory stays that of one variant.
        """
        dataset = self._datasets.pop(name, None)
        if dataset is not None:
            self._counts[name] = len(dataset)

    def count(self, name: str) -> int:
        return (
            len(self._datasets[name])
            if name in self._datasets
            else self._counts.get(name) or len(self.variant(name))
        )

    def describe(self, variants: list[str] | None = None) -> dict:
        """The results.json ``data`` block for ``variants`` (default: those loaded so far)."""
        names = (
            variants
            if variants is not None
            else [v for v in CONFIGS if v in self._datasets or v in self._counts]
        )
        return {
            "source": self.source,
            "location": self.location,
            "edition": self.edition,
            "seed": self.seed,
            "limit": self.limit,
            "variants": {v: {"fingerprint": self.fingerprint(v), "count": self.count(v)} for v in names},
        }


def _export_folder(folder: Path, cache_dir: str | None, limit: int | None) -> DataSource:
    summary = read_summary(folder)
    configs = summary.get("configs", {})

    def load(name: str) -> datasets.Dataset:
        files = sorted(str(p) for p in (folder / name).glob("test-*.parquet"))
        if name not in configs or not files:
            have = ", ".join(c for c in CONFIGS if (folder / c).is_dir()) or "none"
            raise In9Error(
                f"data={folder}: the export has no {name!r} test split (it has: {have}); "
                f"re-export with that variant"
            )
        return datasets.load_dataset("parquet", data_files={"test": files}, split="test", cache_dir=cache_dir)

    expected = {
        c: (v.get("fingerprints") or {}).get("test", v.get("fingerprint")) for c, v in configs.items()
    }
    return DataSource(
        source=summary.get("source", "unknown"),
        location=str(folder),
        edition=summary.get("edition"),
        seed=summary.get("seed"),
        load=load,
        limit=limit,
        expected=expected,
        params=summary.get("source_params") or {},
        image_format=summary.get("image_format", "png"),
    )


def _builder(
    source: str,
    location: str,
    *,
    data_dir: str | None,
    source_kwargs: dict,
    cache_dir: str | None,
    limit: int | None,
) -> DataSource:
    def load(name: str) -> datasets.Dataset:
        builder = In9(
            config_name=name,
            source=source,
            data_dir=data_dir,
            source_kwargs=source_kwargs,
            cache_dir=cache_dir,
            splits=("test",),
        )
        try:
            builder.download_and_prepare()
        except In9Error as err:  # name in9-eval's flag for the data location
            raise In9Error(f"--data {location}: {err.for_cli({'data_dir': '--data'})}") from None
        return builder.as_dataset("test")

    official = source == "release"
    return DataSource(
        source=source,
        location=location,
        edition="official" if official else "seeded",
        seed=None if official else 0,  # the background draw: the builder's default for a seeded source
        load=load,
        limit=limit,
        params=dict(source_kwargs),
    )


def _parse_synthetic(data: str) -> dict:
    keys = ("per_class", "size", "scene_seed", "train_per_class")  # the SyntheticSource arguments accepted
    kwargs: dict = {}
    _, _, spec = data.partition(":")
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, sep, value = item.partition("=")
        if not (sep and key in keys and value.isdigit()):
            raise In9Error(f"--data {data!r}: expected synthetic[:per_class=N,size=N,scene_seed=N]")
        kwargs[key] = int(value)
    kwargs.setdefault("train_per_class", 0)
    return kwargs


def _hub_dataset(repo_id: str, cache_dir: str | None, limit: int | None) -> DataSource:
    summary: dict = {}
    try:  # the export's summary travels with a pushed export; without it the edition is unknown
        import json

        from huggingface_hub import hf_hub_download

        summary = json.loads(
            Path(hf_hub_download(repo_id, "in9_export.json", repo_type="dataset")).read_text()
        )
    except Exception:  # noqa: BLE001 - a missing summary only loses provenance, the data still loads
        summary = {}

    def load(name: str) -> datasets.Dataset:
        try:
            return datasets.load_dataset(repo_id, name, split="test", cache_dir=cache_dir)
        except (FileNotFoundError, ConnectionError, ValueError) as exc:
            raise In9Error(
                f"data={repo_id}: cannot load config {name!r} from the Hub "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None

    configs = summary.get("configs", {})
    expected = {
        c: (v.get("fingerprints") or {}).get("test", v.get("fingerprint")) for c, v in configs.items()
    }
    return DataSource(
        source=summary.get("source", f"hub:{repo_id}"),
        location=repo_id,
        edition=summary.get("edition"),
        seed=summary.get("seed"),
        load=load,
        limit=limit,
        expected=expected,
        image_format=summary.get("image_format"),
    )


def open_data(
    data: str = OFFICIAL,
    *,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    source_kwargs: dict | None = None,
) -> DataSource:
    """Open ``data`` (see the module docstring) as a :class:`DataSource`.

    ``source_kwargs`` go to the builder's source for ``in9`` / a release path (e.g. ``{"per_class": 2}`` for
    a small fake release) and override the ``synthetic:...`` settings.
    """
    extra = dict(source_kwargs or {})
    if limit is not None and limit < 1:
        raise In9Error(f"limit={limit}: use a positive number of images per class")
    cache = str(cache_dir) if cache_dir is not None else None
    data = str(data)
    path = Path(data).expanduser()
    # A local folder named like the keyword (an export written to ./in9) wins: the user pointed at it.
    if data == OFFICIAL and not (path / "in9_export.json").is_file():
        return _builder(
            "release",
            OFFICIAL,
            data_dir=None,
            source_kwargs=extra,
            cache_dir=cache,
            limit=limit,
        )
    if data == "synthetic" or data.startswith("synthetic:"):
        return _builder(
            "synthetic",
            data,
            data_dir=None,
            source_kwargs={**_parse_synthetic(data), **extra},
            cache_dir=cache,
            limit=limit,
        )
    if path.is_dir() and (path / "in9_export.json").is_file():
        return _export_folder(path.absolute(), cache, limit)
    if path.exists():
        if path.is_file() and not path.name.endswith((".tar.gz", ".tgz", ".tar")):
            raise In9Error(f"data={data}: a file, but not a release tarball (.tar.gz)")
        return _builder(
            "release",
            str(path.absolute()),
            data_dir=str(path.absolute()),
            source_kwargs=extra,
            cache_dir=cache,
            limit=limit,
        )
    if data.count("/") == 1 and not data.startswith((".", "/", "~")):
        return _hub_dataset(data, cache, limit)
    raise In9Error(
        f"data={data}: no such file or folder; pass an export folder, a release tarball or folder, "
        "'synthetic', a Hub dataset id (org/name) or 'in9'"
    )
