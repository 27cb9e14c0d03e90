"""The adversarial-backgrounds search on plain tensors: every foreground against the whole Only-BG-T pool.

A foreground is *vulnerable* when some background of the pool makes the prediction differ from its label (an
unmapped prediction, -1, counts): the original code's rule and the leaderboard's metric. It is
*bg-class fooled* (the paper's text definition) when some background of another class makes the model predict
that background's class. Both are existence questions, so the answer cannot depend on the order in which the
backgrounds are tried, on how pairs are batched, on early stopping or on the number of processes; only the
cost does. The search uses that freedom:

- the pool is decoded once into a uint8 tensor on the device; composites (``fg * mask + bg * (1 - mask)``) and
  normalisation are computed there, batch by batch;
- a batch mixes pairs of several foregrounds, so it stays full until the last foreground;
- one forward pass answers both questions for its pair; a foreground stops as soon as it is bg-class fooled
  (which implies vulnerable), or when every background that could still change an answer has been tried
  (once vulnerable, backgrounds of its own class cannot bg-class fool it and are skipped);
- each foreground tries the backgrounds in the order of how often they have fooled so far, foregrounds of
  its own class first (bg-class fooling count, then fooling count, both descending; then the same over all
  classes; then pool index): a deterministic rule. Foregrounds in flight re-sort their untried backgrounds
  as the counts change.

The reported ``fooling_bg_image_id`` is a witness: the first fooling background the search met. Without
reordering that is the first fooling background in pool order (independent of batch size and process count);
with reordering it depends on the history of the run. ``forward_passes`` is the cost spent on the foreground.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from in9_builder.classes import NUM_CLASSES
from in9_builder.errors import In9Error

# uint8 composites (B, 3, H, W) on the device -> (B,) int64 IN-9 predictions in -1..8.
Predict = Callable[[torch.Tensor], torch.Tensor]

# Foregrounds in flight re-sort their untried backgrounds by the current ranking every this many batches (when
# it changed): a count, not a clock, so that a run's schedule is reproducible.
RESORT_EVERY_BATCHES = 16


@dataclass(frozen=True)
class ForegroundOutcome:
    """What the search decided for one foreground."""

    vulnerable: bool
    bg_class_fooled: bool
    fooling_bg: int | None  # pool index of the witness background, None when robust
    fooling_prediction: int | None  # the prediction it caused (-1 = unmapped), None when robust
    forward_passes: int


class BackgroundRanking:
    """How often each background has fooled so far, and the order in which to try the backgrounds.

    Fooling is class-specific (a background that turns birds into insects may leave dogs alone), so the
    order for a foreground of class y ranks first by what the background did to class-y foregrounds
    (bg-class fooled, then fooled), then by what it did to all foregrounds if it is of another class, then
    by pool index.
    """

    def __init__(self, pool_labels: np.ndarray, reorder: bool = True) -> None:
        self.pool_labels = np.asarray(pool_labels, dtype=np.int64)
        self.reorder = reorder
        size = len(self.pool_labels)
        # Per foreground class: pairs whose prediction differed from the label / was the background's class.
        self.fooled = np.zeros((NUM_CLASSES, size), dtype=np.int64)
        self.class_fooled = np.zeros((NUM_CLASSES, size), dtype=np.int64)
        self._index = np.arange(size, dtype=np.int64)
        self._orders: dict[int, np.ndarray] = {}
        self.version = 0  # bumped whenever the counts change

    def record(self, bg_index: np.ndarray, fg_labels: np.ndarray, preds: np.ndarray) -> None:
        if not self.reorder:
            return
        fooled = preds != fg_labels
        if fooled.any():
            class_fooled = fooled & (preds == self.pool_labels[bg_index])
            np.add.at(self.fooled, (fg_labels[fooled], bg_index[fooled]), 1)
            np.add.at(self.class_fooled, (fg_labels[class_fooled], bg_index[class_fooled]), 1)
            self._orders.clear()
            self.version += 1

    def order(self, label: int) -> np.ndarray:
        """Pool indices in the order to try them on a class-``label`` foreground (lexsort: last key first)."""
        if not self.reorder:
            return self._index
        if label not in self._orders:
            # Over all classes, a background's record says nothing about foregrounds of its own class (it
            # turned others into that class): it counts only for the other classes' foregrounds.
            other = self.pool_labels != label
            keys = (
                self._index,
                -self.fooled.sum(0) * other,
                -self.class_fooled.sum(0) * other,
                -self.fooled[label],
                -self.class_fooled[label],
            )
            self._orders[label] = np.lexsort(keys)
        return self._orders[label]

    def positions(self, label: int) -> np.ndarray:
        """The rank of every pool index in :meth:`order`."""
        positions = np.empty_like(self._index)
        positions[self.order(label)] = self._index
        return positions


class _Foreground:
    """The search state of one foreground in flight."""

    __slots__ = ("index", "label", "todo", "cursor", "vulnerable", "class_fooled", "witness", "passes")

    def __init__(self, index: int, label: int, order: np.ndarray) -> None:
        self.index = index
        self.label = label
        self.todo = order  # backgrounds still worth trying, in order
        self.cursor = 0
        self.vulnerable = False
        self.class_fooled = False
        self.witness: tuple[int, int] | None = None
        self.passes = 0

    def take(self, count: int) -> np.ndarray:
        chunk = self.todo[self.cursor : self.cursor + count]
        self.cursor += len(chunk)
        return chunk

    def resort(self, positions: np.ndarray) -> None:
        """Try the untried backgrounds in a newer order (the same set: the outcome cannot change)."""
        rest = self.todo[self.cursor :]
        self.todo, self.cursor = rest[np.argsort(positions[rest], kind="stable")], 0

    def observe(self, bgs: np.ndarray, preds: np.ndarray, pool_labels: np.ndarray) -> None:
        self.passes += len(bgs)
        fooled = preds != self.label
        if not fooled.any():
            return
        if not self.vulnerable:
            first = int(np.argmax(fooled))
            self.vulnerable = True
            self.witness = (int(bgs[first]), int(preds[first]))
            # From now on only the bg-class question is open: own-class backgrounds cannot answer it.
            rest = self.todo[self.cursor :]
            self.todo, self.cursor = rest[pool_labels[rest] != self.label], 0
        if (fooled & (preds == pool_labels[bgs])).any():
            self.class_fooled = True

    @property
    def done(self) -> bool:
        return self.class_fooled or self.cursor >= len(self.todo)

    def outcome(self) -> ForegroundOutcome:
        bg, pred = self.witness if self.witness is not None else (None, None)
        return ForegroundOutcome(self.vulnerable, self.class_fooled, bg, pred, self.passes)


def as_nhwc(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> its (N, H, W, C) contiguous view; no copy when ``images`` is channels-last already."""
    return images.permute(0, 2, 3, 1).contiguous()


class Foregrounds:
    """Foregrounds ready to composite: ``fg * mask`` and ``1 - mask`` as uint8, computed once.

    Both are held channels-last (N, H, W, 3): row selections of contiguous NHWC tensors combine without any
    broadcast over the innermost dimension, and the composite comes out channels-last, the layout the model
    runs fastest on, without another copy (cheaper than compositing NCHW and converting). The mask is
    stored with its 3 channels for that reason.
    """

    def __init__(self, images: torch.Tensor, masks: torch.Tensor) -> None:
        keep = (masks > 0).to(torch.uint8)  # a 0/1, 0/255 or boolean mask, (N, 1, H, W)
        self.masked = as_nhwc(images * keep)  # (N, H, W, 3)
        self.background = as_nhwc((1 - keep).expand_as(images))  # (N, H, W, 3)

    def __len__(self) -> int:
        return len(self.masked)

    def composite(
        self, pool_nhwc: torch.Tensor, fg_index: torch.Tensor, bg_index: torch.Tensor
    ) -> torch.Tensor:
        """uint8 composites ``fg * mask + bg * (1 - mask)`` of the pairs (fg_index[k], bg_index[k]).

        ``pool_nhwc`` is the pool as (M, H, W, 3) (:func:`as_nhwc`); the result is (B, 3, H, W) channels-last.
        Exact in uint8 (the two terms never overlap); integer multiply-adds over index_select, because
        torch.where with a broadcast boolean mask is much slower on CPU (``benchmarks/bench_challenge.py``).
        """
        out = self.masked.index_select(0, fg_index) + pool_nhwc.index_select(
            0, bg_index
        ) * self.background.index_select(0, fg_index)
        return out.permute(0, 3, 1, 2)


def search_backgrounds(
    fg_images: torch.Tensor,
    fg_masks: torch.Tensor,
    fg_labels: Sequence[int] | np.ndarray,
    pool_images: torch.Tensor,
    pool_labels: Sequence[int] | np.ndarray,
    predict: Predict,
    *,
    batch_size: int,
    reorder: bool = True,
    ranking: BackgroundRanking | None = None,
    on_outcome: Callable[[int, ForegroundOutcome], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> list[ForegroundOutcome]:
    """Decide every foreground against the whole pool; return one outcome per foreground, in input order.

    fg_images (N, 3, H, W) uint8, fg_masks (N, 1, H, W) bool, pool_images (M, 3, H, W) uint8, all on the
    device ``predict`` runs on. ``on_outcome(i, outcome)`` is called as each foreground is decided and
    ``on_batch(pairs)`` after each forward pass.
    """
    if batch_size < 1:
        raise In9Error(f"batch_size={batch_size}: use 1 or more", argument="batch_size")
    fg_labels = np.asarray(fg_labels, dtype=np.int64)
    pool_labels = np.asarray(pool_labels, dtype=np.int64)
    if len(pool_labels) == 0:
        raise In9Error("the challenge needs a background pool: the only_bg_t config has no rows")
    ranking = ranking if ranking is not None else BackgroundRanking(pool_labels, reorder)
    foregrounds = Foregrounds(fg_images, fg_masks)
    pool_nhwc = as_nhwc(pool_images)
    device = pool_images.device
    outcomes: list[ForegroundOutcome | None] = [None] * len(fg_labels)
    queue = iter(range(len(fg_labels)))
    active: list[_Foreground] = []
    exhausted_queue = False
    batches, resorted_at, resorted_version = 0, 0, ranking.version
    while True:
        if (
            ranking.reorder
            and ranking.version != resorted_version
            and batches - resorted_at >= RESORT_EVERY_BATCHES
        ):
            positions = {label: ranking.positions(label) for label in {fg.label for fg in active}}
            for fg in active:
                fg.resort(positions[fg.label])
            resorted_at, resorted_version = batches, ranking.version
        # Keep up to batch_size foregrounds in flight; each gets an equal share of the batch.
        while not exhausted_queue and len(active) < batch_size:
            index = next(queue, None)
            if index is None:
                exhausted_queue = True
            else:
                label = int(fg_labels[index])
                active.append(_Foreground(index, label, ranking.order(label)))
        if not active:
            break
        # Every foreground in flight gets an equal share of the batch (the first ones one more if it does not
        # divide): with a full queue that is one pair each, so no pair is spent after a foreground's success.
        share, extra = divmod(batch_size, len(active))
        plan = [(fg, fg.take(share + (k < extra))) for k, fg in enumerate(active)]
        lengths = np.fromiter((len(chunk) for _, chunk in plan), dtype=np.int64, count=len(plan))
        owners = np.fromiter((fg.index for fg, _ in plan), dtype=np.int64, count=len(plan))
        fg_index = np.repeat(owners, lengths)
        bg_index = np.concatenate([chunk for _, chunk in plan])
        batch = foregrounds.composite(
            pool_nhwc, torch.from_numpy(fg_index).to(device), torch.from_numpy(bg_index).to(device)
        )
        preds = predict(batch).cpu().numpy()
        batches += 1
        pair_labels = fg_labels[fg_index]
        ranking.record(bg_index, pair_labels, preds)
        # Only foregrounds with a differing prediction in their share need a closer look (one vector test
        # for the whole batch instead of small-array work per foreground). Every share is non-empty (at
        # most batch_size foregrounds in flight, each undecided one has a background left), as reduceat needs.
        starts = np.cumsum(lengths) - lengths
        differs = preds != pair_labels
        any_differs = np.logical_or.reduceat(differs, starts).tolist()
        any_class_hit = np.logical_or.reduceat(differs & (preds == pool_labels[bg_index]), starts).tolist()
        for k, (fg, chunk) in enumerate(plan):
            # observe() changes state only on a first differing prediction or a bg-class hit.
            if any_class_hit[k] or (any_differs[k] and not fg.vulnerable):
                start = int(starts[k])
                fg.observe(chunk, preds[start : start + len(chunk)], pool_labels)
            else:
                fg.passes += len(chunk)
        if on_batch is not None:
            on_batch(len(bg_index))
        still = []
        for fg in active:
            if fg.done:
                outcomes[fg.index] = fg.outcome()
                if on_outcome is not None:
                    on_outcome(fg.index, outcomes[fg.index])
            else:
                still.append(fg)
        active = still
    return outcomes  # type: ignore[return-value]


def pair_predictions(
    fg_images: torch.Tensor,
    fg_masks: torch.Tensor,
    pool_images: torch.Tensor,
    predict: Predict,
    *,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The prediction for every (foreground, background) pair: an (N, M) int8 matrix (the analysis' input)."""
    foregrounds = Foregrounds(fg_images, fg_masks)
    pool_nhwc = as_nhwc(pool_images)
    num_fg, num_bg = len(fg_images), len(pool_images)
    out = np.empty(num_fg * num_bg, dtype=np.int8)
    device = pool_images.device
    for start in range(0, num_fg * num_bg, batch_size):
        pairs = torch.arange(start, min(start + batch_size, num_fg * num_bg), device=device)
        batch = foregrounds.composite(pool_nhwc, pairs // num_bg, pairs % num_bg)
        out[start : start + len(pairs)] = predict(batch).cpu().numpy()
        if on_batch is not None:
            on_batch(len(pairs))
    return out.reshape(num_fg, num_bg)


def outcomes_from_predictions(
    preds: np.ndarray, fg_labels: np.ndarray, pool_labels: np.ndarray
) -> list[ForegroundOutcome]:
    """The outcomes an exhaustive (N, M) prediction matrix implies (witness: first fooling bg, pool order)."""
    fooled = preds != np.asarray(fg_labels)[:, None]
    class_fooled = fooled & (preds == np.asarray(pool_labels)[None, :])
    out = []
    for i in range(len(preds)):
        hit = np.flatnonzero(fooled[i])
        witness = (int(hit[0]), int(preds[i, hit[0]])) if len(hit) else (None, None)
        out.append(ForegroundOutcome(bool(len(hit)), bool(class_fooled[i].any()), *witness, preds.shape[1]))
    return out
