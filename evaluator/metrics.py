"""The benchmark's metrics as pure functions of predictions: no model, no I/O, so validation recomputes them.

Bootstrap intervals use a fixed seed (0) and 1000 resamples, so the same predictions always give the same CI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from in9_builder.classes import CLASS_NAMES

Z95 = 1.959963984540054  # two-sided 95 % normal quantile
BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 1000


def wilson_interval(correct: int, count: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there are no trials."""
    if count == 0:
        return (0.0, 1.0)
    p = correct / count
    denom = 1 + z * z / count
    centre = (p + z * z / (2 * count)) / denom
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def per_class_accuracy(predictions: Sequence[int], labels: Sequence[int]) -> dict[str, float]:
    """Accuracy per IN-9 class (by name), for the classes that have rows."""
    preds, labels = np.asarray(predictions), np.asarray(labels)
    out = {}
    for index, name in enumerate(CLASS_NAMES):
        rows = labels == index
        if rows.any():
            out[name] = float((preds[rows] == index).mean())
    return out


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> dict:
    """``{"value", "ci95", "correct", "count", "per_class"}``; a prediction of -1 (unmapped) is wrong."""
    preds, labels = np.asarray(predictions), np.asarray(labels)
    if preds.shape != labels.shape:
        raise ValueError(f"{len(preds)} predictions for {len(labels)} labels")
    correct, count = int((preds == labels).sum()), int(len(labels))
    low, high = wilson_interval(correct, count)
    return {
        "value": correct / count if count else 0.0,
        "ci95": [low, high],
        "correct": correct,
        "count": count,
        "per_class": per_class_accuracy(preds, labels),
    }


def paired_rows(same_keys: Sequence, rand_keys: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of Mixed-Same and Mixed-Rand that share a foreground, in sorted key order."""
    same_index = {k: i for i, k in enumerate(same_keys)}
    rand_index = {k: i for i, k in enumerate(rand_keys)}
    if len(same_index) != len(same_keys) or len(rand_index) != len(rand_keys):
        raise ValueError("pairing keys repeat within a variant; pair by fg_image_id")
    common = sorted(same_index.keys() & rand_index.keys())
    return (
        np.array([same_index[k] for k in common], dtype=np.int64),
        np.array([rand_index[k] for k in common], dtype=np.int64),
    )


def paired_bootstrap_ci(
    a_correct: np.ndarray,
    b_correct: np.ndarray,
    *,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float]:
    """95 % percentile CI of mean(a) - mean(b), resampling pairs together (row i of a with row i of b)."""
    diff = np.asarray(a_correct, dtype=np.float64) - np.asarray(b_correct, dtype=np.float64)
    n = len(diff)
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for r in range(resamples):  # one draw of n indices per resample: the order validation reproduces
        means[r] = diff[rng.integers(0, n, size=n)].mean()
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def bg_gap(
    same_pred: Sequence[int],
    same_label: Sequence[int],
    rand_pred: Sequence[int],
    rand_label: Sequence[int],
    *,
    same_keys: Sequence | None = None,
    rand_keys: Sequence | None = None,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> dict:
    """accuracy(mixed_same) - accuracy(mixed_rand), with a paired bootstrap CI.

    Rows pair by ``*_keys`` (the ``fg_image_id``) when given, else by position (the variants must then
    have the same length). ``value`` is the difference of the two full accuracies; the CI resamples the pairs.
    """
    same_ok = np.asarray(same_pred) == np.asarray(same_label)
    rand_ok = np.asarray(rand_pred) == np.asarray(rand_label)
    if same_keys is not None and rand_keys is not None:
        si, ri = paired_rows(same_keys, rand_keys)
    else:
        if len(same_ok) != len(rand_ok):
            raise ValueError("mixed_same and mixed_rand differ in length and have no fg_image_id to pair by")
        si = ri = np.arange(len(same_ok))
    value = float(same_ok.mean() - rand_ok.mean()) if len(same_ok) and len(rand_ok) else float("nan")
    low, high = paired_bootstrap_ci(same_ok[si], rand_ok[ri], seed=seed, resamples=resamples)
    return {"value": value, "ci95": [low, high], "n_pairs": int(len(si))}


def bg_reliance(accuracies: Mapping[str, float]) -> dict:
    """The extras: ``original - only_fg`` and the ``only_bg_t`` accuracy (chance is 1/9), where available."""
    out = {}
    if "original" in accuracies and "only_fg" in accuracies:
        out["original_minus_only_fg"] = float(accuracies["original"] - accuracies["only_fg"])
    if "only_bg_t" in accuracies:
        out["only_bg_t"] = float(accuracies["only_bg_t"])
    return out


def variant_metrics(columns_by_variant: Mapping[str, Mapping[str, Sequence]]) -> dict:
    """All the variant metrics from per-variant columns ``prediction``, ``label`` and ``fg_image_id``.

    Returns the ``metrics`` block of results.json without ``challenge``: ``accuracy`` per variant, ``bg_gap``
    when both mixed_same and mixed_rand are present, ``bg_reliance``.
    """
    acc = {v: accuracy(c["prediction"], c["label"]) for v, c in columns_by_variant.items()}
    metrics: dict = {"accuracy": acc}
    if "mixed_same" in columns_by_variant and "mixed_rand" in columns_by_variant:
        same, rand = columns_by_variant["mixed_same"], columns_by_variant["mixed_rand"]
        keys_known = all(
            k is not None
            for k in list(same.get("fg_image_id") or [None]) + list(rand.get("fg_image_id") or [None])
        )
        metrics["bg_gap"] = bg_gap(
            same["prediction"],
            same["label"],
            rand["prediction"],
            rand["label"],
            same_keys=list(same["fg_image_id"]) if keys_known else None,
            rand_keys=list(rand["fg_image_id"]) if keys_known else None,
        )
    reliance = bg_reliance({v: a["value"] for v, a in acc.items()})
    if reliance:
        metrics["bg_reliance"] = reliance
    return metrics


def challenge_metrics(
    labels: Sequence[int], vulnerable: Sequence[bool], bg_class_fooled: Sequence[bool]
) -> dict:
    """The challenge metrics from per-foreground outcomes, i.e. the rows of ``challenge.parquet``.

    ``challenge_accuracy`` = 1 - ``vulnerable_fraction`` (the original code's rule: a constant predictor
    scores its class's share); ``bg_class_fooling_rate`` = share of foregrounds that some background of
    another class turns into that class (the paper's text). Overall and per class (classes with foregrounds).
    """
    labels = np.asarray(labels, dtype=np.int64)
    vulnerable = np.asarray(vulnerable, dtype=bool)
    fooled = np.asarray(bg_class_fooled, dtype=bool)
    if not len(labels) == len(vulnerable) == len(fooled):
        raise ValueError(
            f"challenge_metrics: {len(labels)} labels, {len(vulnerable)} vulnerable flags and "
            f"{len(fooled)} bg_class_fooled flags; expected one of each per foreground"
        )
    if (fooled & ~vulnerable).any():
        row = int(np.flatnonzero(fooled & ~vulnerable)[0])
        raise ValueError(
            f"challenge_metrics: foreground {row} is bg_class_fooled but not vulnerable, which "
            "cannot happen (a background-class prediction differs from the label)"
        )

    def block(rows: np.ndarray) -> dict:
        count = int(rows.sum())
        num_vulnerable, num_fooled = int(vulnerable[rows].sum()), int(fooled[rows].sum())
        return {
            "challenge_accuracy": (count - num_vulnerable) / count if count else None,
            "vulnerable_fraction": num_vulnerable / count if count else None,
            "bg_class_fooling_rate": num_fooled / count if count else None,
            "num_foregrounds": count,
            "num_vulnerable": num_vulnerable,
            "num_bg_class_fooled": num_fooled,
        }

    out = block(np.ones(len(labels), dtype=bool))
    out["per_class"] = {CLASS_NAMES[c]: block(labels == c) for c in sorted(set(labels.tolist()))}
    return out


def mean_std(values: Sequence[float]) -> dict:
    """``{"mean", "std"}`` with the sample standard deviation (ddof 1); ``std`` is None for one value."""
    array = np.asarray(values, dtype=np.float64)
    if not len(array):
        raise ValueError("mean_std: no values")
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else None}


def seed_metrics(accuracy_by_seed: Mapping[int, Mapping[str, float]]) -> dict:
    """The results.json ``metrics.seeds`` block from each background draw's mixed-variant accuracies.

    ``accuracy_by_seed`` is ``{seed: {variant: accuracy}}`` (the same variants for every seed). Per seed:
    the accuracies and ``bg_gap`` (Mixed-Same − Mixed-Rand, when both are there); ``summary``: the mean and
    sample std over seeds of each.
    """
    seeds = sorted(accuracy_by_seed)
    if not seeds:
        raise ValueError("seed_metrics: no seeds")
    variants = list(accuracy_by_seed[seeds[0]])
    if any(list(accuracy_by_seed[s]) != variants for s in seeds):
        raise ValueError("seed_metrics: every seed needs the same variants")
    per_seed: dict[str, dict] = {}
    for seed in seeds:
        acc = {v: float(accuracy_by_seed[seed][v]) for v in variants}
        entry: dict = {"accuracy": acc}
        if "mixed_same" in acc and "mixed_rand" in acc:
            entry["bg_gap"] = acc["mixed_same"] - acc["mixed_rand"]
        per_seed[str(seed)] = entry
    summary = {v: mean_std([per_seed[str(s)]["accuracy"][v] for s in seeds]) for v in variants}
    if "bg_gap" in per_seed[str(seeds[0])]:
        summary["bg_gap"] = mean_std([per_seed[str(s)]["bg_gap"] for s in seeds])
    return {"seeds": seeds, "per_seed": per_seed, "summary": summary}
