"""``evaluate(model, data, variants, ...) -> Results``: the Python API under ``in9-eval``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from evaluator.data import DataSource, open_data
from evaluator.labels import LabelSpace, check_label_mode
from evaluator.models import LoadedModel, load_model, wrap_module
from evaluator.predict import (
    PredictionCache,
    cache_key,
    default_cache_dir,
    make_accelerator,
    predict_variants,
)
from evaluator.preprocess import PROTOCOLS
from evaluator.results.schema import Results, from_predictions
from evaluator.runtime.environment import environment
from in9_builder.classes import IMAGE_VARIANTS
from in9_builder.errors import In9Error


def parse_variants(variants: Sequence[str] | str | None) -> list[str]:
    """The image variants to score, in the paper's order; ``None`` = all 8."""
    if variants is None:
        return list(IMAGE_VARIANTS)
    names = [v.strip() for v in (variants.split(",") if isinstance(variants, str) else variants) if v.strip()]
    unknown = [v for v in names if v not in IMAGE_VARIANTS]
    if unknown or not names:
        what = f"unknown variant {unknown[0]!r}" if unknown else "no variant given"
        raise In9Error(f"--variants: {what}; choose from {', '.join(IMAGE_VARIANTS)}")
    return [v for v in IMAGE_VARIANTS if v in names]


def model_slug(model_id: str) -> str:
    return Path(str(model_id).rstrip("/")).name.replace(" ", "_") or "model"


def default_num_workers(device: torch.device | str = "cpu") -> int:
    """Decoding worker processes: none on CPU, one per spare core (at most 4) beside an accelerator.

    On CPU the model's threads use every core during the forward; a worker process would preempt them
    (measured slower than letting the inference streams decode, see ``predict.inference_streams``).
    """
    if torch.device(device).type == "cpu":
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _load(
    model,
    *,
    revision,
    preprocess,
    label_map,
    trust_remote_code,
    allow_pickle,
    mean,
    std,
    id2label,
    label_space,
    input_size,
) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, torch.nn.Module):
        if mean is None or std is None:
            raise In9Error("evaluate(nn.Module): pass mean= and std= (the normalisation the module expects)")
        return wrap_module(
            model,
            mean=mean,
            std=std,
            id2label=id2label,
            label_space=label_space,
            input_size=input_size,
            protocol=preprocess,
        )
    return load_model(
        str(model),
        revision,
        protocol=preprocess,
        label_map=label_map,
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
    )


def evaluate(
    model: str | os.PathLike | torch.nn.Module | LoadedModel,
    data: str | os.PathLike | DataSource = "in9",
    variants: Sequence[str] | str | None = None,
    *,
    revision: str | None = None,
    batch_size: int = 32,
    precision: str = "no",
    label_mode: str = "top1-mapped",
    preprocess: str = "paper",
    label_map: str | os.PathLike | None = None,
    limit: int | None = None,
    output_dir: str | os.PathLike | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    id2label: Mapping[int, str] | None = None,
    label_space: LabelSpace | None = None,
    input_size: int = 224,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    num_workers: int | None = None,
    progress: bool = True,
    challenge: bool = False,
    challenge_analysis: bool = False,
    analysis_sample: int | None = None,
    accelerator=None,
) -> Results:
    """Score ``model`` on the IN-9 ``variants`` of ``data`` (spec §6); write the outputs if ``output_dir``.

    ``model`` is a Hub id or local folder (with ``revision``), or a ``torch.nn.Module`` mapping a normalised
    NCHW float batch to logits together with its ``mean``/``std`` and ``id2label`` (or ``label_space``).
    Predictions are cached per (weights, protocol, label mode, precision, data fingerprint) in ``cache_dir``.
    """
    names = parse_variants(variants)
    check_label_mode(label_mode)
    if preprocess not in PROTOCOLS:
        raise In9Error(f"--preprocess {preprocess!r}: choose one of {', '.join(PROTOCOLS)}")
    if batch_size < 1:
        raise In9Error(f"--batch-size {batch_size}: use 1 or more")
    if analysis_sample is not None and analysis_sample < 1:
        raise In9Error(f"--analysis-sample {analysis_sample}: use a positive number of foregrounds")
    if (challenge_analysis or analysis_sample is not None) and not challenge:
        raise In9Error("--challenge-analysis / --analysis-sample need --challenge")
    accelerator = accelerator or make_accelerator(precision)
    loaded = _load(
        model,
        revision=revision,
        preprocess=preprocess,
        label_map=label_map,
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
        mean=mean,
        std=std,
        id2label=id2label,
        label_space=label_space,
        input_size=input_size,
    )
    if isinstance(data, DataSource) and limit is not None and data.limit != limit:
        raise In9Error(
            f"limit={limit}: the DataSource passed was opened with limit={data.limit}; pass "
            "limit to open_data instead"
        )
    source = data if isinstance(data, DataSource) else open_data(str(data), limit=limit, cache_dir=cache_dir)
    cache = None
    if use_cache:
        root = Path(cache_dir) / "predictions" if cache_dir is not None else default_cache_dir()
        cache = PredictionCache(root, cache_key(loaded, label_mode=label_mode, precision=precision))
    workers = default_num_workers(accelerator.device) if num_workers is None else num_workers

    predictions, origin = predict_variants(
        loaded,
        source,
        names,
        accelerator=accelerator,
        label_mode=label_mode,
        batch_size=batch_size,
        cache=cache,
        num_workers=workers,
        progress=progress,
    )
    metrics = from_predictions(predictions)
    out = Path(output_dir) if output_dir is not None else None

    challenge_rows = None
    if challenge:
        from evaluator.challenge import run_challenge

        state_root = cache.folder if cache is not None else (out or Path(".")) / ".challenge_state"
        result = run_challenge(
            loaded,
            source,
            accelerator=accelerator,
            label_mode=label_mode,
            batch_size=batch_size,
            state_dir=Path(state_root) / "challenge-state",
            analysis=challenge_analysis,
            analysis_sample=analysis_sample,
            output_dir=out,
            progress=progress,
        )
        metrics["challenge"] = result.metrics
        if result.analysis is not None:
            metrics["challenge_analysis"] = result.analysis
        challenge_rows = result.rows

    # The challenge reads fg_mask and the only_bg_t pool: record their fingerprints even if not scored.
    extra = [v for v in ("only_bg_t", "fg_mask") if challenge and v not in names]
    data_block = source.describe(names + extra)
    results = Results(
        model={
            "id": loaded.model_id,
            "revision": loaded.revision,
            "source": loaded.source,
            "num_labels": loaded.num_labels,
            "label_space": loaded.label_space.kind,
            "num_params": loaded.num_params,
        },
        protocol={
            "label_mode": label_mode,
            "preprocess": preprocess,
            "precision": precision,
            "batch_size": batch_size,
            "limit": source.limit,
        },
        data=data_block,
        metrics=metrics,
        environment={**environment(accelerator), "prediction_origin": origin},
        predictions=predictions,
        challenge_rows=challenge_rows,
    )
    if out is not None and accelerator.is_main_process:
        results.write(out)
        from evaluator.results.submission import write_submission

        write_submission(results, out)  # .eval_results/in9.yaml + the model card snippet (spec §6.5)
    accelerator.wait_for_everyone()
    return results
