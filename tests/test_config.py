"""EvalConfig: every evaluation choice validated once; the one source of the protocol block, the prediction
cache key and the challenge resume key."""

from __future__ import annotations

import pytest

from evaluator import EvalConfig
from in9_builder.errors import In9Error

IDENTITY = {"model": None, "revision": None, "weights": "w", "preprocess": "p", "to_in9": "t"}


@pytest.mark.parametrize(
    ("options", "message", "argument"),
    [
        ({"batch_size": 0}, "batch_size=0: use 1 or more", "batch_size"),
        ({"batch_size": True}, "batch_size=True: use 1 or more", "batch_size"),
        (
            {"label_mode": "top5"},
            "label_mode='top5': choose one of top1-mapped, restricted, superclass-sum",
            "label_mode",
        ),
        ({"preprocess": "resize"}, "preprocess='resize': choose one of paper, processor", "preprocess"),
        ({"precision": "fp8"}, "precision='fp8': choose one of no, bf16, fp16", "precision"),
        ({"limit": 0}, "limit=0: use a positive number of images per class", "limit"),
        ({"num_workers": -1}, "num_workers=-1: use 0 or more", "num_workers"),
        (
            {"challenge": True, "analysis_sample": 0},
            "analysis_sample=0: use a positive number",
            "analysis_sample",
        ),
        (
            {"challenge_analysis": True},
            "challenge_analysis=True / analysis_sample=N need challenge=True",
            None,
        ),
    ],
)
def test_bad_choices_are_value_errors_naming_the_argument(options, message, argument):
    with pytest.raises(ValueError) as caught:
        EvalConfig(**options)
    assert isinstance(caught.value, In9Error) and str(caught.value).startswith(message)
    if argument is not None:
        assert caught.value.argument == argument


def test_the_cli_reads_the_same_message_with_its_flags():
    with pytest.raises(In9Error) as caught:
        EvalConfig(challenge_analysis=True)
    flags = {
        "challenge_analysis": "--challenge-analysis",
        "analysis_sample": "--analysis-sample",
        "challenge": "--challenge",
    }
    assert caught.value.for_cli(flags) == "--challenge-analysis / --analysis-sample N need --challenge"


def test_replace_refuses_an_unknown_option_and_keeps_the_rest():
    config = EvalConfig(batch_size=8).replace(label_mode="restricted")
    assert (config.batch_size, config.label_mode) == (8, "restricted")
    with pytest.raises(
        In9Error, match="^bacth_size: not an evaluation option; known: label_mode, preprocess"
    ):
        config.replace(bacth_size=4)


def test_protocol_block_records_the_choices_and_the_datas_limit():
    config = EvalConfig(label_mode="superclass-sum", preprocess="processor", precision="bf16", batch_size=16)
    assert config.protocol(limit=3) == {
        "label_mode": "superclass-sum",
        "preprocess": "processor",
        "precision": "bf16",
        "batch_size": 16,
        "limit": 3,
    }
    assert EvalConfig(limit=2).protocol()["limit"] == 2


def test_keys_change_with_what_changes_a_prediction_and_only_that():
    base = EvalConfig()
    key = base.prediction_key(IDENTITY)
    assert key == {**IDENTITY, "label_mode": "top1-mapped", "precision": "no"}
    # Batch size, workers, progress and caching change the cost, never a prediction.
    cost_only = EvalConfig(batch_size=7, num_workers=3, progress=False, use_cache=False, tune_cpu=True)
    assert cost_only.prediction_key(IDENTITY) == key
    assert EvalConfig(label_mode="restricted").prediction_key(IDENTITY) != key
    assert EvalConfig(precision="bf16").prediction_key(IDENTITY) != key
    fingerprints = {"fg_mask": "sha256:a", "only_bg_t": "sha256:b", "original": "sha256:c"}
    assert base.challenge_key(IDENTITY, fingerprints) == {
        **key,
        "fg_mask": "sha256:a",
        "only_bg_t": "sha256:b",
    }


def test_prediction_cache_lives_under_cache_dir_or_the_user_cache(tmp_path, monkeypatch):
    assert EvalConfig(cache_dir=tmp_path).prediction_cache_root() == tmp_path / "predictions"
    monkeypatch.setenv("IN9_CACHE", str(tmp_path / "c"))
    assert EvalConfig().prediction_cache_root() == tmp_path / "c" / "predictions"
    monkeypatch.delenv("IN9_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert EvalConfig().prediction_cache_root() == tmp_path / "x" / "in9" / "predictions"
