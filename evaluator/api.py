"""``evaluate(model, data, variants, config=None, **overrides) -> Results``: the API under ``in9-eval``.

One call per stage: the choices (:class:`~evaluator.config.EvalConfig`), the accelerator, the model, the
data, the variant predictions, their metrics, the challenge, the results (written if ``output_dir``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from evaluator.cache import PredictionCache
from evaluator.challenge.run import ChallengeResult, run_challenge
from evaluator.config import EvalConfig, pixel_store_parent
from evaluator.data import DataSource, open_data
from evaluator.forward import Forward
from evaluator.images import RunImages, check_seeds
from evaluator.model.labels import LabelSpace
from evaluator.model.loading import LoadedModel, load_model, wrap_module
from evaluator.predict import predict_variants
from evaluator.results.schema import Results, from_predictions
from evaluator.results.submission import write_submission
from evaluator.runtime.accelerator import default_num_workers, make_accelerator
from evaluator.runtime.cpu import allocator_state, tuned_process
from evaluator.runtime.environment import environment
from evaluator.runtime.pixels import PixelStore
from in9_builder.classes import IMAGE_VARIANTS, parse_variants
from in9_builder.errors import In9Error


def _load(
    model,
    *,
    revision,
    config: EvalConfig,
    label_map,
    trust_remote_code,
    allow_pickle,
    module_options,
    prompts,
):
    if prompts is not None and isinstance(model, (LoadedModel, torch.nn.Module)):
        raise In9Error(f"prompts={prompts}: applies to a zero-shot model id or folder, not a loaded model")
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, torch.nn.Module):
        if module_options.get("mean") is None or module_options.get("std") is None:
            raise In9Error("model=<nn.Module>: pass mean= and std= (the normalisation the module expects)")
        return wrap_module(model, protocol=config.preprocess, **module_options)
    return load_model(
        str(model),
        revision,
        protocol=config.preprocess,
        label_map=label_map,
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
        prompts=prompts,
        cache_dir=config.cache_dir,
        use_cache=config.use_cache,
    )


def _open(data, config: EvalConfig) -> DataSource:
    if not isinstance(data, DataSource):
        return open_data(str(data), limit=config.limit, cache_dir=config.cache_dir)
    if config.limit is not None and data.limit != config.limit:
        raise In9Error(
            f"limit={config.limit}: the DataSource passed was opened with limit={data.limit}; pass "
            "limit to open_data instead",
            argument="limit",
        )
    return data


def _challenge(
    forward: Forward, source: DataSource, config: EvalConfig, identity: dict, cache, out, images
) -> ChallengeResult:
    state_root = cache.folder if cache is not None else (out or Path(".")) / ".challenge_state"
    return run_challenge(
        forward,
        source,
        batch_size=config.batch_size,
        state_dir=Path(state_root) / "challenge-state",
        key=config.challenge_key(identity, {v: source.fingerprint(v) for v in ("fg_mask", "only_bg_t")}),
        analysis=config.challenge_analysis,
        analysis_sample=config.analysis_sample,
        output_dir=out,
        progress=config.progress,
        images=images,
    )


def evaluate(
    model: str | os.PathLike | torch.nn.Module | LoadedModel,
    data: str | os.PathLike | DataSource = "in9",
    variants: Sequence[str] | str | None = None,
    config: EvalConfig | None = None,
    *,
    revision: str | None = None,
    label_map: str | os.PathLike | None = None,
    prompts: str | os.PathLike | Mapping | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    id2label: Mapping[int, str] | None = None,
    label_space: LabelSpace | None = None,
    input_size: int = 224,
    output_dir: str | os.PathLike | None = None,
    accelerator=None,
    images: RunImages | None = None,
    **overrides,
) -> Results:
    """Score ``model`` on the IN-9 ``variants`` of ``data``; write the outputs if ``output_dir``.

    ``model`` is a Hub id or local folder (with ``revision``), a :class:`LoadedModel`, or a
    ``torch.nn.Module`` mapping a normalised NCHW float batch to logits together with its ``mean``/``std`` and
    ``id2label`` (or ``label_space``). ``config`` (or keyword ``overrides`` of its fields: ``batch_size``,
    ``label_mode``, ``preprocess``, ``precision``, ``limit``, ``challenge``, ``tune_cpu``, ...) says how.
    Predictions are cached per (model identity, label mode, precision, data fingerprint) unless
    ``use_cache=False``. The caller's process is left as it was unless ``tune_cpu=True``. A zero-shot model
    (CLIP, SigLIP) is scored through a classifier built from ``prompts`` (``"imagenet-1k"`` by default,
    ``"nine"``, or a JSON file of ``classnames`` and ``templates``). ``seeds=(0, 1, 2)`` also scores the
    mixed variants re-rendered with each background draw (``metrics.seeds``). ``images`` is a sweep's
    :class:`~evaluator.images.RunImages` over the same ``data`` (:func:`evaluator.sweep.evaluate_many`).
    """
    config = (config or EvalConfig()).replace(**overrides)
    names = parse_variants(variants, IMAGE_VARIANTS)
    source = images.source if images is not None else _open(data, config)
    check_seeds(config.seeds, names, source)
    accelerator = accelerator or make_accelerator(config.precision)
    module_options = dict(
        mean=mean, std=std, id2label=id2label, label_space=label_space, input_size=input_size
    )
    loaded = _load(
        model,
        revision=revision,
        config=config,
        label_map=label_map,
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
        module_options=module_options,
        prompts=prompts,
    )
    # The weights digest hashes every parameter: only when a cache or the challenge needs the identity.
    identity = loaded.identity() if config.use_cache or config.challenge else None
    cache = (
        PredictionCache(config.prediction_cache_root(), config.prediction_key(identity))
        if config.use_cache
        else None
    )
    forward = Forward(loaded, config.label_mode, accelerator)
    workers = default_num_workers(accelerator.device) if config.num_workers is None else config.num_workers
    out = Path(output_dir) if output_dir is not None else None

    own_images = images is None and bool(config.seeds)
    if own_images:  # the seeds' inputs, decoded once for this run
        images = RunImages(source, PixelStore(pixel_store_parent(config.cache_dir)), shared=False)
    try:
        with tuned_process(accelerator.device, config.tune_cpu):
            predictions, origin, halved = predict_variants(
                forward,
                source,
                names,
                batch_size=config.batch_size,
                cache=cache,
                num_workers=workers,
                progress=config.progress,
                images=images,
                seeds=config.seeds,
            )
            metrics = from_predictions(predictions)
            challenge = (
                _challenge(forward, source, config, identity, cache, out, images)
                if config.challenge
                else None
            )
    finally:
        if own_images:
            images.close()
    if challenge is not None:
        metrics["challenge"] = challenge.metrics
        if challenge.analysis is not None:
            metrics["challenge_analysis"] = challenge.analysis

    # The challenge and the seeds read fg_mask and the only_bg_t pool: record their fingerprints even if not
    # scored.
    reads_inputs = config.challenge or bool(config.seeds)
    extra = [v for v in ("only_bg_t", "fg_mask") if reads_inputs and v not in names]
    results = Results(
        model={
            "id": loaded.model_id,
            "revision": loaded.revision,
            "source": loaded.source,
            "num_labels": loaded.num_labels,
            "label_space": loaded.label_space.kind,
            "num_params": loaded.num_params,
            **loaded.record,
        },
        protocol=config.protocol(source.limit),
        data=source.describe(names + extra),
        metrics=metrics,
        environment={
            **environment(accelerator, allocator_state()),
            "prediction_origin": origin,
            # Passes that ran out of device memory and were rerun with a smaller batch: {pass: batch size}.
            **({"batch_size_halved": halved} if halved else {}),
        },
        predictions=predictions,
        challenge_rows=challenge.rows if challenge is not None else None,
    )
    if out is not None and accelerator.is_main_process:
        results.write(out)
        write_submission(results, out)  # .eval_results/in9.yaml + the model card snippet
    accelerator.wait_for_everyone()
    return results
