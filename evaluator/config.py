"""Every evaluation choice in one validated, torch-free place: :class:`EvalConfig`.

It is the one source of the ``results.json`` ``protocol`` block, of the prediction cache key and of the
challenge resume key, so those three can never disagree about what a run was. The leaderboard and the CLI's
``--help`` import the choices from here without paying torch's start-up.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from in9_builder.errors import In9Error

LABEL_MODES = ("top1-mapped", "restricted", "superclass-sum")
PREPROCESS_PROTOCOLS = ("paper", "processor")
PRECISIONS = ("no", "bf16", "fp16")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise In9Error(f"{name}={value!r}: choose one of {', '.join(choices)}", argument=name)


def _positive(name: str, value: object, what: str, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise In9Error(f"{name}={value!r}: use {what}", argument=name)


@dataclass(frozen=True)
class EvalConfig:
    """How to score: the protocol (label mode, preprocessing, precision), batching, data limit, caching,
    progress, the challenge and opt-in process tuning. Validated once, at construction."""

    label_mode: str = "top1-mapped"
    preprocess: str = "paper"
    precision: str = "no"
    batch_size: int = 32
    limit: int | None = None
    cache_dir: str | os.PathLike | None = None
    use_cache: bool = True
    num_workers: int | None = None  # None: the device's default (runtime.accelerator.default_num_workers)
    progress: bool = True
    challenge: bool = False
    challenge_analysis: bool = False
    analysis_sample: int | None = None
    # glibc allocator settings + a frozen heap for the run: process-wide, so only when asked (the CLI asks).
    tune_cpu: bool = False
    # Background draws to re-render the mixed variants with (beside the data's own images); () = none.
    seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _choice("label_mode", self.label_mode, LABEL_MODES)
        _choice("preprocess", self.preprocess, PREPROCESS_PROTOCOLS)
        _choice("precision", self.precision, PRECISIONS)
        _positive("batch_size", self.batch_size, "1 or more")
        if self.limit is not None:
            _positive("limit", self.limit, "a positive number of images per class")
        if self.num_workers is not None:
            _positive("num_workers", self.num_workers, "0 or more", allow_zero=True)
        if self.analysis_sample is not None:
            _positive("analysis_sample", self.analysis_sample, "a positive number of foregrounds")
        _check_seeds(self.seeds)
        if (self.challenge_analysis or self.analysis_sample is not None) and not self.challenge:
            argument = "challenge_analysis" if self.challenge_analysis else "analysis_sample"
            raise In9Error(
                "challenge_analysis=True / analysis_sample=N need challenge=True", argument=argument
            )

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **overrides) -> EvalConfig:
        """A copy with ``overrides``; an unknown name is an error that lists the known ones."""
        unknown = sorted(set(overrides) - set(self.fields()))
        if unknown:
            raise In9Error(
                f"{unknown[0]}: not an evaluation option; known: {', '.join(self.fields())}",
                argument=unknown[0],
            )
        return dataclasses.replace(self, **overrides)

    def protocol(self, limit: int | None = None) -> dict:
        """The ``results.json`` ``protocol`` block (``limit``: the data's, when it was opened with one)."""
        block = {
            "label_mode": self.label_mode,
            "preprocess": self.preprocess,
            "precision": self.precision,
            "batch_size": self.batch_size,
            "limit": self.limit if limit is None else limit,
        }
        if self.seeds:
            block["seeds"] = list(self.seeds)
        return block

    def prediction_key(self, model_identity: Mapping) -> dict:
        """What identifies a variant's predictions (besides the data fingerprint): the model and the choices
        that change a prediction. Batch size, workers and progress change only the cost."""
        return {**model_identity, "label_mode": self.label_mode, "precision": self.precision}

    def challenge_key(self, model_identity: Mapping, fingerprints: Mapping[str, str]) -> dict:
        """What identifies a challenge run's outcomes (the resume key): the prediction key plus the
        fingerprints of the foregrounds (``fg_mask``) and the background pool (``only_bg_t``)."""
        return {
            **self.prediction_key(model_identity),
            **{k: fingerprints[k] for k in ("fg_mask", "only_bg_t")},
        }

    def prediction_cache_root(self) -> Path:
        """Where finished variants' predictions are kept: ``cache_dir/predictions`` or the user cache."""
        if self.cache_dir is not None:
            return Path(self.cache_dir) / "predictions"
        return user_cache_dir() / "predictions"


def _check_seeds(seeds: object) -> None:
    ok = isinstance(seeds, tuple) and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    if not ok or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise In9Error(
            f"seeds={seeds!r}: give a tuple of distinct non-negative integers, e.g. (0, 1, 2)",
            argument="seeds",
        )


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2); a single number is a count: ``"5"`` -> (0, 1, 2, 3, 4)."""
    items = [item.strip() for item in str(text).split(",")]
    if not all(item.isdigit() for item in items):
        raise In9Error(
            f"seeds={text}: give a comma-separated list of non-negative integers (0,1,2) or a count (5)",
            argument="seeds",
        )
    numbers = [int(item) for item in items]
    if len(numbers) == 1:
        if numbers[0] < 1:
            raise In9Error(f"seeds={text}: a count of draws must be 1 or more", argument="seeds")
        return tuple(range(numbers[0]))
    if len(set(numbers)) != len(numbers):
        raise In9Error(f"seeds={text}: a seed is listed twice", argument="seeds")
    return tuple(sorted(numbers))


def pixel_store_parent(cache_dir: str | os.PathLike | None) -> Path:
    """Where a run keeps its decoded pixels while it runs (removed at its end): ``<cache>/pixels``."""
    return (Path(cache_dir) if cache_dir is not None else user_cache_dir()) / "pixels"


def user_cache_dir() -> Path:
    """``$IN9_CACHE``, else ``$XDG_CACHE_HOME/in9``, else ``~/.cache/in9``."""
    if os.environ.get("IN9_CACHE"):
        return Path(os.environ["IN9_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "in9"
