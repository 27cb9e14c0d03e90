"""Metrics against brute-force references on small constructed cases."""

import math

import numpy as np
import pytest

from evaluator.metrics import (
    accuracy,
    bg_gap,
    bg_reliance,
    paired_bootstrap_ci,
    per_class_accuracy,
    variant_metrics,
    wilson_interval,
)
from in9_builder.classes import CLASS_NAMES


def _wilson_reference(k, n, z=1.959963984540054):
    # The textbook closed form, written differently from the implementation.
    p = k / n
    root = z * math.sqrt(z * z + 4 * n * p * (1 - p))
    return ((2 * n * p + z * z - root) / (2 * (n + z * z)), (2 * n * p + z * z + root) / (2 * (n + z * z)))


@pytest.mark.parametrize(("k", "n"), [(8, 10), (0, 5), (5, 5), (3850, 4050), (1, 9)])
def test_wilson_matches_the_closed_form(k, n):
    assert wilson_interval(k, n) == pytest.approx(_wilson_reference(k, n), abs=1e-12)


def test_wilson_known_value():
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)


def test_accuracy_counts_unmapped_as_wrong_and_per_class():
    labels = [0, 0, 0, 1, 1, 8]
    preds = [0, -1, 0, 1, 2, 8]
    out = accuracy(preds, labels)
    assert (out["correct"], out["count"]) == (4, 6)
    assert out["value"] == pytest.approx(4 / 6)
    assert out["ci95"] == pytest.approx(list(_wilson_reference(4, 6)))
    assert out["per_class"] == {"dog": pytest.approx(2 / 3), "bird": 0.5, "fish": 1.0}


def test_per_class_against_a_loop():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 9, 300)
    preds = np.where(rng.random(300) < 0.6, labels, rng.integers(-1, 9, 300))
    expected = {}
    for c, name in enumerate(CLASS_NAMES):
        rows = [i for i in range(300) if labels[i] == c]
        expected[name] = sum(preds[i] == c for i in rows) / len(rows)
    assert per_class_accuracy(preds, labels) == pytest.approx(expected)


def _bootstrap_reference(a, b, seed=0, resamples=1000):
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(resamples):
        idx = rng.integers(0, len(a), size=len(a))
        means.append(sum(float(a[i]) - float(b[i]) for i in idx) / len(a))
    means.sort()

    # numpy's default percentile: linear interpolation between order statistics.
    def pct(q):
        pos = q / 100 * (len(means) - 1)
        lo = math.floor(pos)
        return means[lo] + (means[min(lo + 1, len(means) - 1)] - means[lo]) * (pos - lo)

    return pct(2.5), pct(97.5)


def _mixed_case(n=60, seed=1):
    rng = np.random.default_rng(seed)
    fg = [f"img{i:03d}" for i in range(n)]
    labels = rng.integers(0, 9, n)
    same_pred = np.where(rng.random(n) < 0.8, labels, (labels + 1) % 9)
    rand_pred = np.where(rng.random(n) < 0.5, labels, (labels + 2) % 9)
    return fg, labels, same_pred, rand_pred


def test_bg_gap_pairs_by_fg_image_id_and_matches_the_reference():
    fg, labels, same_pred, rand_pred = _mixed_case()
    # Shuffle the Mixed-Rand rows: pairing must follow fg_image_id, not position.
    perm = np.random.default_rng(7).permutation(len(fg))
    out = bg_gap(
        same_pred, labels, rand_pred[perm], labels[perm], same_keys=fg, rand_keys=[fg[i] for i in perm]
    )
    same_ok, rand_ok = same_pred == labels, rand_pred == labels
    assert out["value"] == pytest.approx(same_ok.mean() - rand_ok.mean())
    assert out["n_pairs"] == len(fg)
    assert out["ci95"] == pytest.approx(list(_bootstrap_reference(same_ok, rand_ok)), abs=1e-12)
    # Deterministic: validation recomputes the identical interval.
    again = bg_gap(same_pred, labels, rand_pred, labels, same_keys=fg, rand_keys=fg)
    assert again == out


def test_bg_gap_only_pairs_shared_foregrounds():
    out = bg_gap([0, 0, 1], [0, 0, 1], [0, 1], [0, 0], same_keys=["a", "b", "c"], rand_keys=["c", "a"])
    assert out["n_pairs"] == 2
    assert out["value"] == pytest.approx(1.0 - 0.5)


def test_background_only_and_foreground_only_predictors():
    rng = np.random.default_rng(0)
    n = 450
    labels = rng.integers(0, 9, n)
    rand_bg = rng.integers(0, 9, n)  # Mixed-Rand backgrounds of uniformly random classes
    fg = [str(i) for i in range(n)]
    # Predicts the background's class: right on every Mixed-Same row, right on ~1/9 of Mixed-Rand.
    bg_model = bg_gap(labels, labels, rand_bg, labels, same_keys=fg, rand_keys=fg)
    expected = 1.0 - float((rand_bg == labels).mean())
    assert bg_model["value"] == pytest.approx(expected)
    assert 0.8 < bg_model["ci95"][0] <= bg_model["value"] <= bg_model["ci95"][1]
    # Predicts the foreground's class: no gap at all.
    fg_model = bg_gap(labels, labels, labels, labels, same_keys=fg, rand_keys=fg)
    assert fg_model == {"value": 0.0, "ci95": [0.0, 0.0], "n_pairs": n}


def test_paired_bootstrap_is_seeded():
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 2, 40), rng.integers(0, 2, 40)
    assert paired_bootstrap_ci(a, b) == paired_bootstrap_ci(a, b)
    assert paired_bootstrap_ci(a, b, seed=1) != paired_bootstrap_ci(a, b, seed=0)


def test_bg_reliance_and_variant_metrics():
    assert bg_reliance({"original": 0.9, "only_fg": 0.7, "only_bg_t": 0.3}) == pytest.approx(
        {"original_minus_only_fg": 0.2, "only_bg_t": 0.3}
    )
    assert bg_reliance({"original": 0.9}) == {}
    cols = {
        "original": {"prediction": [0, 1], "label": [0, 1], "fg_image_id": [None, None]},
        "mixed_same": {"prediction": [0, 1], "label": [0, 1], "fg_image_id": ["a", "b"]},
        "mixed_rand": {"prediction": [0, 2], "label": [0, 1], "fg_image_id": ["b", "a"]},
    }
    m = variant_metrics(cols)
    assert set(m) == {"accuracy", "bg_gap"}
    assert m["accuracy"]["mixed_rand"]["value"] == 0.5
    assert m["bg_gap"]["value"] == 0.5 and m["bg_gap"]["n_pairs"] == 2
