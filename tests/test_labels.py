"""Label spaces: which head a model has, and the three label modes on hand-computed cases."""

import json
import math

import numpy as np
import pytest
import torch

from evaluator.model.labels import (
    LABEL_MODES,
    LabelSpace,
    logits_to_in9,
    resolve_label_space,
    wordnet_classes,
)
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


# --- heads beyond 1000 / 9 labels: exact mappings on constructed id2label tables ---

TENCH, TABBY, SOCCER_BALL, BRAMBLING, CHIHUAHUA = (
    "n01440764",
    "n02123045",
    "n04254680",
    "n01530575",
    "n02085620",
)
DOG_ROOT = "dog, domestic dog, Canis familiaris"  # n02084071: the IN-9 dog root, not an ImageNet-1k class


def test_1001_label_head_is_background_plus_imagenet_shifted_by_one():
    id2label = {0: "background", **{i + 1: name for i, name in enumerate(imagenet1k_names())}}
    space = resolve_label_space(id2label)
    assert space.kind == "imagenet-1k+background"
    assert space.num_labels == 1001
    assert np.array_equal(space.to_in9, np.concatenate([[-1], IN1K_TO_IN9]))
    assert space.to_in9[[0, 1, 152, 282]].tolist() == [-1, 8, 0, -1]  # background, tench, Chihuahua, tabby


def test_1001_label_head_needs_background_first_and_the_names_after_it():
    names = imagenet1k_names()
    with pytest.raises(In9Error, match=r"1001 labels, but label 0 is 'LABEL_0', not 'background'"):
        resolve_label_space({0: "LABEL_0", **{i + 1: n for i, n in enumerate(names)}})
    shifted = {0: "background", **{i: names[min(i, 999)] for i in range(1, 1001)}}  # names not shifted
    with pytest.raises(
        In9Error, match=r"1001 labels \('background' first\) but .*first: index 1 is 'goldfish"
    ):
        resolve_label_space(shifted)


def test_wnid_labelled_head_maps_imagenet_classes_by_the_paper_and_others_by_wordnet():
    # n02084071 dog (root), n01322604 puppy, n02121808 domestic cat, n02012849 crane (bird), n00015388 animal
    space = resolve_label_space(
        {
            0: TENCH,
            1: TABBY,
            2: SOCCER_BALL,
            3: BRAMBLING,
            4: "n02084071",
            5: "n01322604",
            6: "n02121808",
            7: "n02012849",
            8: "n00015388",
            9: "N01440764",
        }
    )
    assert space.kind == "wnid"
    # tabby (an ImageNet-1k class) stays unmapped as in the paper's table; the domestic cat above it is a
    # carnivore by WordNet; the dog root and a puppy are dogs; 'animal' is above every root: unmapped.
    assert space.to_in9.tolist() == [8, -1, -1, 1, 0, 0, 4, 1, -1, 8]


def test_1000_wnids_in_another_order_map_by_identity_not_position():
    wnids = imagenet1k_wnids()
    order = np.random.default_rng(0).permutation(1000)
    space = resolve_label_space({i: wnids[j] for i, j in enumerate(order)})
    assert space.kind == "wnid"
    assert np.array_equal(space.to_in9, IN1K_TO_IN9[order])


def test_gapped_id2label_keys_are_accepted_one_entry_per_logit():
    # transformers builds len(id2label) = 3 outputs; logit i is the i-th smallest key.
    space = resolve_label_space({0: TENCH, 2: CHIHUAHUA, 5: BRAMBLING})
    assert space.kind == "wnid"
    assert space.to_in9.tolist() == [8, 0, 1]


def test_label_map_on_a_gapped_head_uses_id2label_keys(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"5": "insect", "koi": 8}))
    space = resolve_label_space({0: "koi", 2: "cat", 5: "ant"}, path)
    assert space.kind == "label-map" and space.to_in9.tolist() == [8, -1, 5]
    path.write_text(json.dumps({"3": 1}))
    with pytest.raises(
        In9Error, match=r"key '3' is not one of the model's id2label keys \(3 keys, 0..5 with gaps\)"
    ):
        resolve_label_space({0: "koi", 2: "cat", 5: "ant"}, path)


def test_label_map_is_honoured_on_every_kind_of_head(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"0": 3}))
    names = {0: "background", **{i + 1: n for i, n in enumerate(imagenet1k_names())}}
    space = resolve_label_space(names, path)
    assert space.kind == "label-map" and space.to_in9[0] == 3 and (space.to_in9[1:] == -1).all()


def _in22k_like_head():
    """A 22k-style head: other WordNet nouns around the ImageNet-1k names, two ids deleted (as transformers'
    22k conversions delete ids 9205 and 15027 of a 21,843-label list), and the expected mapping per logit."""
    names = imagenet1k_names()
    full = [
        "organism, being",
        "deleted one",
        *names[:500],
        DOG_ROOT,
        "deleted two",
        *names[500:],
        "bluebird",
    ]
    id2label = {k: label for k, label in enumerate(full) if k not in (1, 503)}
    # organism: no IN-9 root above it; the dog root and bluebird: by the WordNet hierarchy (not ImageNet-1k)
    expected = np.concatenate([[-1], IN1K_TO_IN9[:500], [0], IN1K_TO_IN9[500:], [1]])
    crane = [i for i, label in enumerate(id2label.values()) if label == "crane"]
    assert len(crane) == 2  # ImageNet-1k has two 'crane's (the bird 134, the machine 517)
    expected[crane] = -1  # a name the head uses twice maps nowhere
    return id2label, expected


def test_21k_head_labelled_by_names_maps_the_imagenet_1k_classes_it_contains():
    id2label, expected = _in22k_like_head()
    space = resolve_label_space(id2label)
    assert space.kind == "imagenet-21k"
    assert space.num_labels == len(id2label) == 1003
    assert np.array_equal(space.to_in9, expected)


def test_21k_head_labelled_by_wnids():
    wnids = imagenet1k_wnids()
    extra = [f"n{i:08d}" for i in range(1500)]  # below the first WordNet noun offset: no class
    space = resolve_label_space(dict(enumerate(extra[:700] + wnids + extra[700:])))
    assert space.kind == "imagenet-21k"
    assert np.array_equal(space.to_in9, np.concatenate([np.full(700, -1), IN1K_TO_IN9, np.full(800, -1)]))


def test_large_head_without_imagenet_classes_asks_for_a_label_map():
    with pytest.raises(In9Error) as err:
        resolve_label_space({i: f"LABEL_{i}" for i in range(21841)})
    msg = str(err.value)
    assert "found 21841 labels ('LABEL_0'" in msg and "only 0 of those 370 were found" in msg
    assert "label_map=FILE" in msg and "\n" not in msg


def test_large_wnid_head_without_the_imagenet_classes_is_a_wnid_head():
    # 1200 wnids: the dog root and puppy (mapped by WordNet) and 1198 wnids that are no noun at all
    labels = ["n02084071", "n01322604", *[f"n{i:08d}" for i in range(1198)]]
    space = resolve_label_space(dict(enumerate(labels)))
    assert space.kind == "wnid"
    assert space.to_in9.tolist() == [0, 0] + [-1] * 1198


def test_packaged_wordnet_table_agrees_with_the_paper_on_every_mapped_imagenet_class():
    # The table is a WordNet hypernym closure; the paper's table is stricter (it leaves out e.g. the grouse
    # family 80-86, whippet 172, the domestic cats 281-285), which is why ImageNet-1k classes never use it.
    by_wnid = wordnet_classes()
    wnids = imagenet1k_wnids()
    assert [i for i in range(1000) if IN1K_TO_IN9[i] >= 0 and by_wnid.get(wnids[i]) != IN1K_TO_IN9[i]] == []
    assert sorted(i for i in range(1000) if IN1K_TO_IN9[i] < 0 and wnids[i] in by_wnid) == [
        *range(80, 87),
        171,
        172,
        *range(281, 286),
        575,
        660,
    ]
    assert len(by_wnid) == 3108
