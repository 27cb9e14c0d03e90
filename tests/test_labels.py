"""Label spaces: which head a model has, and the three label modes on hand-computed cases."""

import json
import math

import numpy as np
import pytest
import torch

from evaluator.model.labels import LABEL_MODES, LabelSpace, logits_to_in9, resolve_label_space
from in9_builder.classes import IN1K_TO_IN9, imagenet1k_names, imagenet1k_wnids
from in9_builder.errors import In9Error
from tests.fixtures_evaluator import IN9_SPELLINGS


def test_imagenet_names_give_the_paper_mapping():
    space = resolve_label_space(dict(enumerate(imagenet1k_names())))
    assert space.kind == "imagenet-1k"
    assert np.array_equal(space.to_in9, IN1K_TO_IN9)
    assert int((space.to_in9 >= 0).sum()) == 370


def test_imagenet_short_names_and_wnids_and_string_keys_are_recognised():
    names = [n.split(",")[0] for n in imagenet1k_names()]
    assert resolve_label_space({str(i): n for i, n in enumerate(names)}).kind == "imagenet-1k"
    assert resolve_label_space(dict(enumerate(imagenet1k_wnids()))).kind == "imagenet-1k"


def test_shuffled_1000_names_are_refused_not_guessed():
    names = imagenet1k_names()
    names[0], names[1] = names[1], names[0]
    with pytest.raises(In9Error, match=r"2 do not match the ImageNet-1k names .*index 0.*label_map=FILE"):
        resolve_label_space(dict(enumerate(names)))


def test_nine_way_head_in_any_order_and_spelling():
    space = resolve_label_space(dict(enumerate(IN9_SPELLINGS)))
    assert space.kind == "in9"
    assert space.to_in9.tolist() == [8, 0, 2, 1, 6, 3, 4, 5, 7]


def test_unknown_label_space_error_lists_labels_and_shows_map_format():
    with pytest.raises(In9Error) as err:
        resolve_label_space({i: f"LABEL_{i}" for i in range(5)})
    msg = str(err.value)
    assert "found 5 labels ('LABEL_0', 'LABEL_1'" in msg and "label_map=FILE" in msg and '"tabby": -1' in msg
    assert "\n" not in msg
    with pytest.raises(In9Error, match="9 labels but not the IN-9 classes"):
        resolve_label_space({i: f"LABEL_{i}" for i in range(9)})


def test_label_map_by_name_and_index(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"cat": -1, "Golden Retriever": 0, "2": "fish", "3": 4}))
    space = resolve_label_space({0: "cat", 1: "golden_retriever", 2: "koi", 3: "fox", 4: "car"}, path)
    assert space.kind == "label-map"
    assert space.to_in9.tolist() == [-1, 0, 8, 4, -1]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"zebra": 1}', r"map.json: key 'zebra' is neither an index nor a label"),
        ('{"0": 9}', r"map.json: value 9 for key '0' must be an IN-9 index"),
        ('{"7": 1}', r"map.json: key '7' is not a label index 0..1"),
        ("[1, 2]", r"map.json: expected a JSON object"),
        ("{oops", r"map.json: not valid JSON"),
        ('{"0": -1}', r"map.json: maps no label"),
    ],
)
def test_bad_label_map_names_file_and_field(tmp_path, content, match):
    path = tmp_path / "map.json"
    path.write_text(content)
    with pytest.raises(In9Error, match=match):
        resolve_label_space({0: "a", 1: "b"}, path)


def test_missing_label_map_file(tmp_path):
    with pytest.raises(In9Error, match="nope.json: file not found"):
        resolve_label_space({0: "a"}, tmp_path / "nope.json")


# A 5-label head: labels 1 and 2 are both bird, 3 is unmapped. One row where the three modes all differ.
SPACE = LabelSpace("label-map", np.array([0, 1, 1, -1, 2]))
LOGITS = torch.tensor(
    [
        [2.0, 1.9, 1.9, 3.0, 0.0],  # top1 = 3 (unmapped)
        [0.0, 0.0, 0.0, 0.0, 5.0],
    ]
)  # clear class 2


def test_three_label_modes_on_a_hand_computed_case():
    preds = {mode: logits_to_in9(LOGITS, SPACE, mode) for mode in LABEL_MODES}
    # top1-mapped: argmax is the unmapped label 3 -> -1 (always wrong, as in the paper).
    assert preds["top1-mapped"].pred.tolist() == [-1, 2]
    # restricted: argmax over labels 0,1,2,4 -> label 0 -> class 0.
    assert preds["restricted"].pred.tolist() == [0, 2]
    # superclass-sum: bird gets e^1.9 * 2 = 13.37 > dog e^2 = 7.39 -> class 1.
    assert preds["superclass-sum"].pred.tolist() == [1, 2]
    for p in preds.values():
        assert p.raw_top1.tolist() == [3, 4]
        assert p.pred.dtype == torch.int64 and p.scores.dtype == torch.float32


def test_predictions_without_scores_are_the_same_in_every_mode():
    for mode in LABEL_MODES:
        full, lean = logits_to_in9(LOGITS, SPACE, mode), logits_to_in9(LOGITS, SPACE, mode, with_scores=False)
        assert lean.pred.tolist() == full.pred.tolist() and lean.raw_top1.tolist() == full.raw_top1.tolist()
        assert lean.scores is None if mode != "superclass-sum" else torch.equal(lean.scores, full.scores)


def test_scores_are_per_class_probability_sums():
    scores = logits_to_in9(LOGITS, SPACE, "top1-mapped").scores
    e = [math.exp(v) for v in (2.0, 1.9, 1.9, 3.0, 0.0)]
    total = sum(e)
    expected = [e[0] / total, (e[1] + e[2]) / total, e[4] / total] + [0.0] * 6
    assert scores.shape == (2, 9)
    assert scores[0].tolist() == pytest.approx(expected, abs=1e-6)


def test_nine_way_head_all_modes_agree_and_follow_the_name_order():
    space = resolve_label_space(dict(enumerate(IN9_SPELLINGS)))
    logits = torch.zeros(1, 9)
    logits[0, 0] = 1.0  # model label 0 is "Fish"
    for mode in LABEL_MODES:
        out = logits_to_in9(logits, space, mode)
        assert out.pred.tolist() == [8]
        assert out.scores[0].argmax().item() == 8


def test_bad_label_mode():
    with pytest.raises(In9Error, match="label_mode='top5'"):
        logits_to_in9(LOGITS, SPACE, "top5")
