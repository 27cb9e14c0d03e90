"""The registry of canonical fingerprints: which data a submission must have been scored on.

An entry is one data edition (source, edition, seed, source parameters) with the fingerprint and row count of
each config's test split, recomputed from an ``in9-build export`` folder's parquet files (never copied from
the export's own claim). Two files hold entries:

- the packaged registry, ``hub_cards/canonical_fingerprints.json``: read-only data that ships with the
  package;
- the user registry, where ``in9-leaderboard register`` writes: ``$IN9_REGISTRY`` when set, else
  ``canonical_fingerprints.json`` in the in9 cache folder (``$IN9_CACHE``, else ``$XDG_CACHE_HOME/in9``, else
  ``~/.cache/in9``).

Validation reads both; an explicit registry file (``registry_path=``, ``--canonical FILE``) replaces both,
for reading and for writing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluator.config import user_cache_dir
from hub_cards import CANONICAL_FINGERPRINTS
from in9_builder.atomic import atomic_write_text
from in9_builder.errors import In9Error
from in9_builder.fingerprint import parquet_fingerprint

REGISTRY_SCHEMA = "in9-canonical/1"
REGISTRY_FILE = "canonical_fingerprints.json"


def user_registry_path() -> Path:
    """Where registrations go when no registry file is named (see the module docstring)."""
    if explicit := os.environ.get("IN9_REGISTRY"):
        return Path(explicit)
    return user_cache_dir() / REGISTRY_FILE


def registry_label(registry_path: str | os.PathLike | None = None) -> str:
    """The registry files read for ``registry_path``, as a message names them."""
    if registry_path is not None:
        return str(registry_path)
    return f"{CANONICAL_FINGERPRINTS} + {user_registry_path()}"


def _read(path: Path, *, named: bool) -> dict[str, Any]:
    """One registry file; ``named``: the caller passed it as ``registry_path`` (errors name the argument)."""
    argument = "registry_path" if named else None
    if path.is_dir():
        where = f"registry_path={path}" if named else str(path)
        raise In9Error(f"{where}: is a folder; name the registry's JSON file", argument=argument)
    if not path.exists():
        return {"schema": REGISTRY_SCHEMA, "editions": []}
    try:
        registry = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        fix = (
            "reinstall in9-bench"
            if path == CANONICAL_FINGERPRINTS
            else "fix it or delete it and register again"
        )
        raise In9Error(f"{path}: not a valid registry ({e}); {fix}", argument=argument) from None
    schema = registry.get("schema") if isinstance(registry, dict) else None
    if schema != REGISTRY_SCHEMA:
        raise In9Error(f"{path}: schema {schema!r} is not {REGISTRY_SCHEMA!r}", argument=argument)
    if not isinstance(registry.get("editions"), list):
        raise In9Error(f"{path}: 'editions' must be a list of editions", argument=argument)
    return registry


def load_registry(registry_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The registry to validate against: the file ``registry_path`` alone, or (``None``) the packaged
    registry's editions followed by the user registry's."""
    if registry_path is not None:
        return _read(Path(registry_path), named=True)
    editions = [
        e
        for path in (CANONICAL_FINGERPRINTS, user_registry_path())
        for e in _read(path, named=False)["editions"]
    ]
    return {"schema": REGISTRY_SCHEMA, "editions": editions}


def edition_key(data: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """What a submission's ``data`` block and a registry entry share: (source, edition, seed)."""
    return (data.get("source"), data.get("edition"), data.get("seed"))


def edition_label(data: Mapping[str, Any]) -> str:
    """An edition as messages and the page name it: ``synthetic seeded seed=0``, ``release official``."""
    seed = "" if data.get("seed") is None else f" seed={data.get('seed')}"
    return f"{data.get('source')} {data.get('edition')}{seed}"


def export_fingerprints(export_dir: str | os.PathLike) -> dict[str, Any]:
    """An export folder's edition and per-config test fingerprints, recomputed from its parquet files and
    checked against the folder's own ``in9_export.json``."""
    folder = Path(export_dir)
    summary_path = folder / "in9_export.json"
    if not summary_path.exists():
        raise In9Error(
            f"{folder}: no in9_export.json; pass a folder written by `in9-build export`",
            argument="export_dir",
        )
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise In9Error(
            f"{summary_path}: not valid JSON ({e}); rebuild the export", argument="export_dir"
        ) from None
    configs: dict[str, Any] = {}
    for name, claimed in sorted(summary.get("configs", {}).items()):
        shards = sorted(str(p) for p in (folder / name).glob("test-*.parquet"))
        if not shards:
            raise In9Error(
                f"{folder / name}: no test-*.parquet shards for config {name!r}", argument="export_dir"
            )
        fingerprint, rows = parquet_fingerprint(shards)
        if fingerprint != claimed.get("fingerprint"):
            raise In9Error(
                f"{summary_path}: configs.{name}.fingerprint {claimed.get('fingerprint')} does not match the "
                f"parquet files ({fingerprint}); the export is damaged, rebuild it",
                argument="export_dir",
            )
        configs[name] = {"fingerprint": fingerprint, "count": rows}
    return {
        "source": summary.get("source"),
        "edition": summary.get("edition"),
        "seed": summary.get("seed"),
        "source_params": summary.get("source_params", {}),
        "configs": configs,
    }


def _same_edition(entry: Mapping[str, Any]) -> tuple:
    return (edition_key(entry), json.dumps(entry.get("source_params", {}), sort_keys=True))


def register_export(
    export_dir: str | os.PathLike, registry_path: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Add an export's recomputed fingerprints as a canonical edition to ``registry_path`` (default: the user
    registry, never the packaged one), replacing an entry with the same source, edition, seed and source
    parameters. Returns the entry."""
    path = Path(registry_path) if registry_path is not None else user_registry_path()
    registry = _read(path, named=registry_path is not None)
    entry = export_fingerprints(export_dir)
    registry["editions"] = [e for e in registry["editions"] if _same_edition(e) != _same_edition(entry)]
    registry["editions"].append(entry)
    try:
        atomic_write_text(path, json.dumps(registry, indent=2) + "\n")
    except OSError as e:
        if registry_path is not None:
            raise In9Error(
                f"registry_path={path}: cannot write it ({e.strerror}); name a writable file",
                argument="registry_path",
            ) from None
        raise In9Error(
            f"{path}: cannot write the user registry ({e.strerror}); set IN9_REGISTRY to a writable file"
        ) from None
    return entry
