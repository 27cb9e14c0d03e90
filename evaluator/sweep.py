"""``evaluate_many(models, data, ...)``: score a list of models on the same data in one process.

Every variant is decoded once for the whole sweep (:class:`~evaluator.images.RunImages` over a
:class:`~evaluator.runtime.pixels.PixelStore`) and shared by every model, by the challenge's pool and by the
seeded draws. Each model writes ``<output_dir>/<slug>/`` exactly as a single :func:`~evaluator.api.evaluate`
would; a model that fails to load or to run is recorded with its one-line reason and the sweep goes on.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from evaluator.api import evaluate
from evaluator.config import EvalConfig, pixel_store_parent
from evaluator.data import DataSource, open_data
from evaluator.images import RunImages, check_seeds
from evaluator.model.hub import offline
from evaluator.results.report import pct, text_table
from evaluator.results.schema import RESULTS_FILE, Results, model_slug
from evaluator.runtime.accelerator import make_accelerator
from evaluator.runtime.pixels import PixelStore
from in9_builder.classes import IMAGE_VARIANTS, parse_variants
from in9_builder.errors import In9Error

# evaluate() keywords that are not EvalConfig fields and apply to every model of a sweep.
MODEL_OPTIONS = ("label_map", "prompts", "trust_remote_code", "allow_pickle")


@dataclass(frozen=True)
class ModelSpec:
    """A model of a sweep: a Hub id or local folder, optionally at a revision (``id@revision``)."""

    id: str
    revision: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        text = text.strip()
        model, sep, revision = text.rpartition("@")
        return cls(model, revision or None) if sep else cls(text)

    @property
    def slug(self) -> str:
        return model_slug(self.id)


@dataclass
class ModelOutcome:
    """What became of one model of a sweep."""

    spec: ModelSpec
    status: str  # "ok", "failed" or "skipped" (a finished result was there)
    folder: Path
    seconds: float = 0.0
    error: str | None = None  # the one-line reason of a failure
    results: Results | None = None


def read_models_file(path: str | os.PathLike) -> list[ModelSpec]:
    """One ``id[@revision]`` per line; ``#`` starts a comment; blank lines are skipped. Every id is checked
    (:func:`check_model_id`) and a bad one is an error naming the file and its line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise In9Error(f"models={path}: cannot read it ({err.strerror or err})", argument="models") from None
    specs = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        spec = ModelSpec.parse(text)
        problem = check_model_id(spec)
        if problem:
            raise In9Error(f"models={path}: line {number}: {problem}", argument="models")
        specs.append(spec)
    if not specs:
        raise In9Error(f"models={path}: lists no model (one id[@revision] per line)", argument="models")
    return specs


def check_model_id(spec: ModelSpec) -> str | None:
    """Why ``spec`` cannot name a model (None if it can): a missing local path, an invalid Hub id, or, when
    offline, a Hub id that is not in the local cache."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    path = Path(spec.id).expanduser()
    if path.exists() or spec.id.startswith((".", "/", "~")):
        return None if path.is_dir() else f"{spec.id!r}: no such model folder"
    try:
        validate_repo_id(spec.id)
    except HFValidationError:
        return f"{spec.id!r}: neither a local folder nor a Hub model id (org/name)"
    if offline() and not isinstance(try_to_load_from_cache(spec.id, "config.json", spec.revision), str):
        where = f" at revision {spec.revision}" if spec.revision else ""
        return f"{spec.id!r}{where}: not in the local Hub cache, and the Hub is offline (HF_HUB_OFFLINE=1)"
    return None


def check_slugs(specs: Sequence[ModelSpec]) -> None:
    """Two models that would write the same folder are an error naming both."""
    seen: dict[str, ModelSpec] = {}
    for spec in specs:
        other = seen.setdefault(spec.slug, spec)
        if other is not spec:
            raise In9Error(
                f"models: {_name(other)} and {_name(spec)} would both write {spec.slug}/; score them in "
                "separate runs with different output folders",
                argument="models",
            )


def _name(spec: ModelSpec) -> str:
    return spec.id + (f"@{spec.revision}" if spec.revision else "")


def finished_result(
    folder: Path, spec: ModelSpec, config: EvalConfig, source: DataSource, variants: list[str]
) -> bool:
    """Whether ``folder`` holds a finished result of ``spec`` for this protocol, challenge and data."""
    try:
        doc = json.loads((folder / RESULTS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    model, recorded = doc.get("model") or {}, (doc.get("data") or {}).get("variants") or {}
    if not _same_model(str(model.get("id")), spec.id):  # another model with the same folder name
        return False
    if spec.revision and not str(model.get("revision") or "").startswith(spec.revision):
        return False
    if doc.get("protocol") != config.protocol(source.limit):
        return False
    if config.challenge and "challenge" not in (doc.get("metrics") or {}):
        return False
    return all((recorded.get(v) or {}).get("fingerprint") == source.fingerprint(v) for v in variants)


def _same_model(recorded: str, wanted: str) -> bool:
    """A Hub id as written; a local folder by its resolved path (``./m`` and ``/abs/m`` are one model)."""
    if recorded == wanted:
        return True
    return Path(recorded).expanduser().resolve() == Path(wanted).expanduser().resolve()


def split_options(config: EvalConfig, options: dict) -> tuple[EvalConfig, dict]:
    """``config`` with the options that are its fields, and the per-model ``evaluate()`` keywords; any other
    name is an error that lists the known ones."""
    fields = set(EvalConfig.fields())
    extra = {k: v for k, v in options.items() if k not in fields}
    unknown = sorted(set(extra) - set(MODEL_OPTIONS))
    if unknown:
        known = ", ".join([*MODEL_OPTIONS, *sorted(fields)])
        raise In9Error(f"{unknown[0]}: not an option of evaluate_many; known: {known}", argument=unknown[0])
    return config.replace(**{k: v for k, v in options.items() if k in fields}), extra


def is_finished(
    folder: str | os.PathLike,
    spec: ModelSpec,
    data: str | os.PathLike | DataSource,
    variants: Sequence[str] | str | None = None,
    **options,
) -> bool:
    """:func:`finished_result` for ``evaluate()``-style arguments (the :class:`EvalConfig` fields)."""
    config, _ = split_options(EvalConfig(), options)
    source = data if isinstance(data, DataSource) else open_data(str(data), limit=config.limit)
    names = parse_variants(variants, IMAGE_VARIANTS)
    return finished_result(Path(folder), spec, config, source, names)


def _one_line(err: BaseException) -> str:
    if isinstance(err, In9Error):
        return str(err).splitlines()[0]
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def evaluate_many(
    models: Sequence[ModelSpec | str],
    data: str | os.PathLike | DataSource = "in9",
    variants: Sequence[str] | str | None = None,
    config: EvalConfig | None = None,
    *,
    output_dir: str | os.PathLike = "results",
    skip_existing: bool = False,
    accelerator=None,
    **options,
) -> list[ModelOutcome]:
    """Score every model of ``models`` on ``data`` into ``output_dir/<slug>/``; one outcome per model.

    ``options`` go to :func:`~evaluator.api.evaluate` for every model (``label_map``, ``prompts``,
    ``trust_remote_code``, ``allow_pickle`` and the :class:`EvalConfig` fields). With ``skip_existing`` a
    model whose folder already holds a finished result for the same protocol and data is not run again.
    """
    specs = [m if isinstance(m, ModelSpec) else ModelSpec.parse(str(m)) for m in models]
    check_slugs(specs)
    names = parse_variants(variants, IMAGE_VARIANTS)
    config, extra = split_options(config or EvalConfig(), options)
    source = data if isinstance(data, DataSource) else open_data(str(data), limit=config.limit)
    check_seeds(config.seeds, names, source)
    accelerator = accelerator or make_accelerator(config.precision)
    images = RunImages(source, PixelStore(pixel_store_parent(config.cache_dir)), shared=True)
    root, outcomes = Path(output_dir), []
    bar = tqdm(total=len(specs), desc="models", unit="model", disable=not config.progress, dynamic_ncols=True)
    try:
        for spec in specs:
            bar.set_postfix_str(spec.id, refresh=True)
            outcomes.append(_one_model(spec, images, names, config, root, skip_existing, accelerator, extra))
            bar.update(1)
            _release_memory()
    finally:
        bar.close()
        images.close()
    return outcomes


def _one_model(spec, images, names, config, root, skip_existing, accelerator, extra) -> ModelOutcome:
    folder = root / spec.slug
    if skip_existing and finished_result(folder, spec, config, images.source, names):
        return ModelOutcome(spec, "skipped", folder)
    start = time.perf_counter()
    try:
        results = evaluate(
            spec.id,
            images.source,
            names,
            config,
            revision=spec.revision,
            output_dir=folder,
            accelerator=accelerator,
            images=images,
            **extra,
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 - one model's failure is its line in the summary
        reason = _one_line(err)
        tqdm.write(f"{_name(spec)}: failed, skipped: {reason}", file=sys.stderr)
        return ModelOutcome(spec, "failed", folder, time.perf_counter() - start, reason)
    return ModelOutcome(spec, "ok", folder, time.perf_counter() - start, results=results)


def sweep_table(outcomes: Sequence[ModelOutcome]) -> str:
    """The summary printed at the end of a sweep: one line per model, its failure reason last."""
    header = ("model", "status", "original %", "mixed_rand %", "bg_gap pp", "seconds")
    rows = [header] + [_table_row(o) for o in outcomes]
    notes = [""] + [o.error or (f"kept {o.folder}" if o.status == "skipped" else "") for o in outcomes]
    failed = sum(o.status == "failed" for o in outcomes)
    summary = f"\n{len(outcomes)} models: {len(outcomes) - failed} scored or skipped, {failed} failed"
    return "\n".join([*text_table(rows, left=2, notes=notes), summary])


def _table_row(outcome: ModelOutcome) -> tuple[str, ...]:
    metrics = outcome.results.metrics if outcome.results is not None else {}
    acc = metrics.get("accuracy", {})
    return (
        _name(outcome.spec),
        outcome.status,
        pct((acc.get("original") or {}).get("value")),
        pct((acc.get("mixed_rand") or {}).get("value")),
        pct((metrics.get("bg_gap") or {}).get("value")),
        f"{outcome.seconds:.0f}" if outcome.status != "skipped" else "–",
    )
