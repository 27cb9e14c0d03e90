"""The challenge for one model on one dataset: load the pool and the foregrounds, shard the foregrounds
across processes, search (:mod:`.search`), save progress (:mod:`.state`), gather, and score
(:mod:`evaluator.metrics`).

A foreground is *vulnerable* when some background of the Only-BG-T pool makes the prediction differ from its
label (an unmapped prediction, -1, counts): the original code's rule and the leaderboard's metric. It is
*bg-class fooled* (the paper's text definition) when some background of another class makes the model
predict that background's class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import broadcast_object_list, gather_object
from tqdm.auto import tqdm

from evaluator.challenge import analysis as challenge_analysis
from evaluator.challenge.search import (
    ForegroundOutcome,
    Predict,
    outcomes_from_predictions,
    pair_predictions,
    search_backgrounds,
)
from evaluator.challenge.state import ChallengeState
from evaluator.config import EvalConfig
from evaluator.forward import Forward
from evaluator.images import RunImages
from evaluator.metrics import challenge_metrics
from evaluator.runtime.decode import decode_column
from in9_builder.errors import In9Error


@dataclass
class ChallengeResult:
    rows: list[dict]  # one per foreground, in data order, keys CHALLENGE_COLUMNS
    metrics: dict  # the results.json metrics.challenge block
    analysis: dict | None  # the challenge_analysis summary, None when not asked


def _stack(arrays: Sequence[np.ndarray], column: str, config: str) -> np.ndarray:
    """Decoded images of one column as a (N, H, W, C) uint8 array (RGB, or (N, H, W) for masks)."""
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise In9Error(
            f"config {config!r}: column {column!r} holds images of different sizes "
            f"({', '.join(str(s[:2]) for s in sorted(shapes))}); the challenge composites pixel "
            "by pixel, so every image must have the same size"
        )
    if not len(arrays):
        return np.zeros((0, 0, 0, 3) if column == "image" else (0, 0, 0), dtype=np.uint8)
    return np.stack(arrays)


def _decoded(ds: Any, config: str, column: str, indices, images: RunImages | None) -> list[np.ndarray]:
    """Rows ``indices`` (all when None) of a column: from the run's shared pixels, else decoded here."""
    if images is not None:
        stored = images.decoded(config, column)
        return [stored[i] for i in (range(len(stored)) if indices is None else indices)]
    return decode_column(ds if indices is None else ds.select(list(indices)), column)


def load_pool(
    data: Any, device: torch.device, images: RunImages | None = None
) -> tuple[torch.Tensor, list[str], np.ndarray]:
    """The Only-BG-T pool, decoded once: (M, 3, H, W) uint8 on ``device``, image ids, labels."""
    ds = data.variant("only_bg_t")
    # A channels-last view of the decoded (M, H, W, 3) array: no copy, and as_nhwc(pool) is free later.
    arrays = _decoded(ds, "only_bg_t", "image", None, images)
    pool = torch.from_numpy(_stack(arrays, "image", "only_bg_t")).permute(0, 3, 1, 2)
    return pool.to(device), list(ds["image_id"]), np.asarray(ds["label"], dtype=np.int64)


def load_foregrounds(
    ds: Any, indices: Sequence[int], device: torch.device, images: RunImages | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The originals and masks of fg_mask rows ``indices``: (n, 3, H, W) uint8 and (n, 1, H, W) bool."""
    originals = _decoded(ds, "fg_mask", "image", indices, images)
    fg = torch.from_numpy(_stack(originals, "image", "fg_mask")).permute(0, 3, 1, 2)  # channels-last
    masks = torch.from_numpy(_stack(_decoded(ds, "fg_mask", "mask", indices, images), "mask", "fg_mask") > 0)
    masks = masks[:, None]
    if len(indices) and fg.shape[-2:] != masks.shape[-2:]:
        raise In9Error(
            f"config 'fg_mask': masks are {tuple(masks.shape[-2:])} but images are "
            f"{tuple(fg.shape[-2:])}; re-export the dataset"
        )
    return fg.to(device), masks.to(device)


def _row(fg_id: str, label: int, outcome: ForegroundOutcome, pool_ids: Sequence[str]) -> dict:
    return {
        "fg_image_id": fg_id,
        "label": int(label),
        "vulnerable": bool(outcome.vulnerable),
        "fooling_bg_image_id": None if outcome.fooling_bg is None else pool_ids[outcome.fooling_bg],
        "fooling_prediction": outcome.fooling_prediction,
        "bg_class_fooled": bool(outcome.bg_class_fooled),
        "forward_passes": int(outcome.forward_passes),
    }


class _Progress:
    """tqdm bar over this process' foregrounds: done, vulnerable so far, forward passes, ETA."""

    def __init__(self, total: int, enabled: bool, desc: str = "challenge") -> None:
        self.bar = tqdm(total=total, desc=desc, unit="fg", disable=not enabled, dynamic_ncols=True)
        self.vulnerable = 0
        self.passes = 0

    def outcome(self, outcome: ForegroundOutcome) -> None:
        self.vulnerable += int(outcome.vulnerable)
        self.bar.update(1)
        self._postfix()

    def batch(self, pairs: int) -> None:
        self.passes += pairs
        self._postfix()

    def _postfix(self) -> None:
        self.bar.set_postfix(vulnerable=self.vulnerable, passes=self.passes, refresh=False)

    def close(self) -> None:
        self.bar.close()


def _gather_rows(new_rows: list[dict], done: dict[str, dict], fg_ids: Sequence[str]) -> list[dict]:
    merged = dict(done)
    for row in gather_object(list(new_rows)):
        merged[row["fg_image_id"]] = row
    return [merged[i] for i in fg_ids]


@dataclass
class _World:
    """What the challenge runs on: the foregrounds' dataset, ids and labels, and the decoded pool."""

    fg_ds: Any
    fg_ids: list[str]
    fg_labels: np.ndarray
    pool: torch.Tensor
    pool_ids: list[str]
    pool_labels: np.ndarray
    images: RunImages | None  # the run's shared pixels, or None (decoded here)


def _load_world(data: Any, device: torch.device, images: RunImages | None) -> _World:
    fg_ds = data.variant("fg_mask")
    labels = np.asarray(fg_ds["label"], dtype=np.int64)
    world = _World(fg_ds, list(fg_ds["image_id"]), labels, *load_pool(data, device, images), images)
    if world.fg_ids:
        probe, _ = load_foregrounds(fg_ds, [0], device, images)
        if probe.shape[-2:] != world.pool.shape[-2:]:
            raise In9Error(
                f"foregrounds (fg_mask) are {tuple(probe.shape[-2:])} but backgrounds (only_bg_t) are "
                f"{tuple(world.pool.shape[-2:])}; the challenge needs both at the same size"
            )
    return world


def _run_analysis(
    world: _World,
    predict: Predict,
    *,
    accelerator: Any,
    batch_size: int,
    sample: int | None,
    output_dir: Path | None,
    progress: bool,
) -> tuple[dict | None, np.ndarray, np.ndarray]:
    """Predict every pair of the (sampled) foregrounds; return the summary, chosen rows and their preds."""
    chosen = challenge_analysis.sample_foregrounds(world.fg_labels, sample)
    local = chosen[accelerator.process_index :: accelerator.num_processes]
    images, masks = load_foregrounds(world.fg_ds, local, world.pool.device, world.images)
    enabled = progress and accelerator.is_main_process
    total = len(local) * len(world.pool_ids)
    with tqdm(total=total, desc="challenge analysis", unit="pair", disable=not enabled) as bar:
        local_preds = pair_predictions(
            images, masks, world.pool, predict, batch_size=batch_size, on_batch=bar.update
        )
    by_index = dict(gather_object([(int(i), local_preds[k]) for k, i in enumerate(local)]))
    empty = np.zeros((0, len(world.pool_ids)))
    preds = np.stack([by_index[int(i)] for i in chosen]) if len(chosen) else empty
    summary = None
    if accelerator.is_main_process:
        pool_nhwc = world.pool.permute(0, 2, 3, 1).cpu().numpy()
        summary = challenge_analysis.analyse(
            preds,
            world.fg_labels[chosen],
            world.pool_labels,
            world.pool_ids,
            pool_nhwc,
            output_dir=output_dir,
        )
    summary = broadcast_object_list([summary])[0]
    return summary, chosen, preds


def _search_local(
    world: _World,
    local: list[int],
    predict: Predict,
    state: ChallengeState,
    *,
    accelerator: Any,
    batch_size: int,
    reorder: bool,
    progress: bool,
) -> list[dict]:
    """Search this process' undecided foregrounds; each decided one is saved to ``state`` at once."""
    new_rows: list[dict] = []
    images, masks = load_foregrounds(world.fg_ds, local, accelerator.device, world.images)
    bar = _Progress(len(local), progress and accelerator.is_main_process)

    def record(k: int, outcome: ForegroundOutcome) -> None:
        row = _row(world.fg_ids[local[k]], world.fg_labels[local[k]], outcome, world.pool_ids)
        new_rows.append(row)
        state.add(row)
        bar.outcome(outcome)

    search_backgrounds(
        images,
        masks,
        world.fg_labels[local],
        world.pool,
        world.pool_labels,
        predict,
        batch_size=batch_size,
        reorder=reorder,
        on_outcome=record,
        on_batch=bar.batch,
    )
    bar.close()
    return new_rows


def _open_state(state_dir: Path, key: dict, accelerator: Any) -> tuple[ChallengeState, dict[str, dict]]:
    state = ChallengeState(state_dir, key, accelerator.process_index)
    if accelerator.is_main_process:
        state.claim()
    accelerator.wait_for_everyone()
    state.check()
    done = state.load()
    accelerator.wait_for_everyone()  # everyone has read the same state before anyone appends to it
    return state, done


def run_challenge(
    forward: Forward,
    data: Any,
    *,
    batch_size: int,
    state_dir: Path,
    key: dict | None = None,
    reorder: bool = True,
    analysis: bool = False,
    analysis_sample: int | None = None,
    output_dir: Path | None = None,
    progress: bool = True,
    images: RunImages | None = None,
) -> ChallengeResult:
    """Run the challenge for one model (``forward``) on one dataset; every process returns the same result.

    ``key`` identifies the run (:meth:`EvalConfig.challenge_key`; computed from ``forward`` when not given):
    foregrounds already decided in
    ``state_dir`` under the same key are not searched again; the rest are shared across the accelerate
    processes. With ``analysis`` every (foreground, background) pair of all foregrounds (or of
    ``analysis_sample`` of them) is predicted for the per-background attack success rates and the figures
    (written into ``output_dir``); an analysis of all foregrounds also decides them, so no search follows.
    """
    if batch_size < 1:
        raise In9Error(f"batch_size={batch_size}: use 1 or more", argument="batch_size")
    accelerator = forward.accelerator
    world = _load_world(data, accelerator.device, images)
    exhaustive, summary = None, None
    if analysis:
        summary, chosen, preds = _run_analysis(
            world,
            forward.predict,
            accelerator=accelerator,
            batch_size=batch_size,
            sample=analysis_sample,
            output_dir=output_dir,
            progress=progress,
        )
        if len(chosen) == len(world.fg_ids):
            exhaustive = outcomes_from_predictions(preds, world.fg_labels, world.pool_labels)

    if key is None:
        choices = EvalConfig(label_mode=forward.label_mode, precision=str(accelerator.mixed_precision))
        fingerprints = {v: data.fingerprint(v) for v in ("fg_mask", "only_bg_t")}
        key = choices.challenge_key(forward.loaded.identity(), fingerprints)
    state, done = _open_state(state_dir, key, accelerator)
    todo = [i for i, fg_id in enumerate(world.fg_ids) if fg_id not in done]
    local = todo[accelerator.process_index :: accelerator.num_processes]
    if exhaustive is not None:
        new_rows = [_row(world.fg_ids[i], world.fg_labels[i], exhaustive[i], world.pool_ids) for i in local]
        for row in new_rows:
            state.add(row)
    else:
        new_rows = _search_local(
            world,
            local,
            forward.predict,
            state,
            accelerator=accelerator,
            batch_size=batch_size,
            reorder=reorder,
            progress=progress,
        )
    state.flush()

    rows = _gather_rows(new_rows, done, world.fg_ids)
    metrics = challenge_metrics(
        [r["label"] for r in rows], [r["vulnerable"] for r in rows], [r["bg_class_fooled"] for r in rows]
    )
    metrics["pool_size"] = len(world.pool_ids)
    metrics["forward_passes"] = int(sum(r["forward_passes"] for r in rows))
    return ChallengeResult(rows=rows, metrics=metrics, analysis=summary)
