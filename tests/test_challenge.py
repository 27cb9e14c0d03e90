"""The adversarial-backgrounds challenge: exact against a brute-force reference, resumable, analysable."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from evaluator.challenge import search
from evaluator.challenge import state as challenge_state
from evaluator.challenge.analysis import attack_success_rates, sample_foregrounds
from evaluator.challenge.run import run_challenge
from evaluator.challenge.search import outcomes_from_predictions, search_backgrounds
from evaluator.forward import Forward
from evaluator.metrics import challenge_metrics
from evaluator.model.labels import LabelSpace
from evaluator.model.loading import wrap_module
from evaluator.results.schema import CHALLENGE_COLUMNS, write_challenge_parquet
from in9_builder.errors import In9Error
from in9_builder.render import composite, only_fg

SIZE = 16
UNMAPPED_TO_IN9 = np.array(list(range(9)) + [-1], dtype=np.int64)  # logit 9 is a class outside IN-9


# ---------------------------------------------------------------------------------------------------------
# A tiny world: 9 classes of foregrounds (class colour in a centred square) and of backgrounds (class colour)
# ---------------------------------------------------------------------------------------------------------


def make_world(per_class: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    fg_colours, bg_colours = rng.random((9, 3)), rng.random((9, 3))

    def images(colours, spread, prefix):
        out, labels, ids = [], [], []
        for y in range(9):
            for k in range(per_class):
                colour = np.clip(colours[y] + rng.normal(0, spread, 3), 0, 1)
                image = np.clip(colour[None, None] + rng.normal(0, 0.04, (SIZE, SIZE, 3)), 0, 1)
                out.append((image * 255).astype(np.uint8))
                labels.append(y)
                ids.append(f"{prefix}{y}_{k:02d}")
        return np.stack(out), np.array(labels), ids

    fg, fg_labels, fg_ids = images(fg_colours, 0.1, "fg")
    pool, pool_labels, pool_ids = images(bg_colours, 0.2, "bg")
    masks = np.zeros((len(fg), SIZE, SIZE), dtype=np.uint8)
    for i in range(len(fg)):  # a centred square of half-size 3..6: pixels 6..9 always foreground, 0..1 never
        r = int(rng.integers(3, 7))
        masks[i, 8 - r : 8 + r, 8 - r : 8 + r] = 1
    return {
        "fg": fg,
        "masks": masks,
        "fg_labels": fg_labels,
        "fg_ids": fg_ids,
        "pool": pool,
        "pool_labels": pool_labels,
        "pool_ids": pool_ids,
        "fg_colours": fg_colours,
        "bg_colours": bg_colours,
    }


class PrototypeNet(torch.nn.Module):
    """Logits from the distance of the centre (foreground) and border (background) colours to class colours;
    a tenth logit is a constant 'not an IN-9 class'. Reads [0,1] pixels (mean 0, std 1)."""

    def __init__(self, fg_colours, bg_colours, fg_weight=40.0, bg_weight=6.0, unmapped=-6.0):
        super().__init__()
        self.register_buffer("fg_colours", torch.tensor(fg_colours, dtype=torch.float32))
        self.register_buffer("bg_colours", torch.tensor(bg_colours, dtype=torch.float32))
        self.fg_weight, self.bg_weight, self.unmapped = fg_weight, bg_weight, unmapped

    def forward(self, x):
        centre = x[:, :, 6:10, 6:10].mean((2, 3))
        border = torch.cat([x[:, :, :2].flatten(2), x[:, :, -2:].flatten(2)], 2).mean(2)
        logits = -self.fg_weight * ((centre[:, None] - self.fg_colours) ** 2).sum(-1)
        logits = logits - self.bg_weight * ((border[:, None] - self.bg_colours) ** 2).sum(-1)
        return torch.cat([logits, torch.full((len(x), 1), self.unmapped)], 1)


class ConstantNet(torch.nn.Module):
    def __init__(self, cls: int):
        super().__init__()
        self.cls = cls

    def forward(self, x):
        logits = torch.zeros(len(x), 10)
        logits[:, self.cls] = 1.0
        return logits


def wrap(module):
    return wrap_module(
        module,
        mean=(0, 0, 0),
        std=(1, 1, 1),
        input_size=SIZE,
        model_id="tiny-test-net",
        label_space=LabelSpace("label-map", UNMAPPED_TO_IN9),
    )


def tensors(world):
    fg = torch.from_numpy(world["fg"]).permute(0, 3, 1, 2).contiguous()
    masks = torch.from_numpy(world["masks"] > 0)[:, None]
    pool = torch.from_numpy(world["pool"]).permute(0, 3, 1, 2).contiguous()
    return fg, masks, pool


def brute_force(world, module) -> np.ndarray:
    """Every pair, composited with the renderer's numpy rule, predicted one foreground at a time: (N, M)."""
    predict = Forward(wrap(module), "top1-mapped").predict
    rows = []
    for image, mask in zip(world["fg"], world["masks"], strict=True):
        batch = np.stack([composite(image, mask, bg) for bg in world["pool"]])
        rows.append(predict(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()).numpy())
    return np.stack(rows)


def reference(world, preds):
    labels, pool_labels = world["fg_labels"], world["pool_labels"]
    fooled = preds != labels[:, None]
    vulnerable = fooled.any(1)
    class_fooled = (fooled & (preds == pool_labels[None])).any(1)
    first = [int(np.flatnonzero(row)[0]) if row.any() else None for row in fooled]
    return vulnerable, class_fooled, first


@pytest.fixture(scope="module")
def world():
    return make_world()


@pytest.fixture(scope="module")
def mixed_net(world):
    return PrototypeNet(world["fg_colours"], world["bg_colours"])


@pytest.fixture(scope="module")
def mixed_reference(world, mixed_net):
    return brute_force(world, mixed_net)


# ---------------------------------------------------------------------------------------------------------
# The search against the brute-force reference
# ---------------------------------------------------------------------------------------------------------


def test_reference_world_has_every_kind_of_foreground(world, mixed_reference):
    vulnerable, class_fooled, _ = reference(world, mixed_reference)
    # Otherwise the comparisons below could pass with a search that only ever answers one way.
    assert (~vulnerable).sum() >= 3
    assert (vulnerable & ~class_fooled).sum() >= 3
    assert class_fooled.sum() >= 3
    assert (mixed_reference == -1).any()  # an unmapped prediction is among the fooling ones


def run_search(world, net, **options):
    """The search over the whole world with ``net`` in the paper's label mode."""
    fg, masks, pool = tensors(world)
    predict = Forward(wrap(net), "top1-mapped").predict
    return search_backgrounds(fg, masks, world["fg_labels"], pool, world["pool_labels"], predict, **options)


@pytest.mark.parametrize("batch_size", [1, 5, 64, 1000])
@pytest.mark.parametrize("reorder", [False, True])
def test_search_equals_brute_force(world, mixed_net, mixed_reference, batch_size, reorder):
    vulnerable, class_fooled, first = reference(world, mixed_reference)
    outcomes = run_search(world, mixed_net, batch_size=batch_size, reorder=reorder)
    assert [o.vulnerable for o in outcomes] == vulnerable.tolist()
    assert [o.bg_class_fooled for o in outcomes] == class_fooled.tolist()
    for i, o in enumerate(outcomes):
        if o.vulnerable:  # the witness really fools the model, with the prediction reported
            assert mixed_reference[i, o.fooling_bg] == o.fooling_prediction != world["fg_labels"][i]
        else:
            assert (o.fooling_bg, o.fooling_prediction, o.forward_passes) == (
                None,
                None,
                len(world["pool_ids"]),
            )
    if not reorder:  # without reordering the witness is the first fooling background in pool order
        assert [o.fooling_bg for o in outcomes] == first
    labels = world["fg_labels"]
    found = challenge_metrics(labels, [o.vulnerable for o in outcomes], [o.bg_class_fooled for o in outcomes])
    assert found == challenge_metrics(labels, vulnerable, class_fooled)


@pytest.mark.parametrize("batch_size", [5, 64])
def test_resorting_in_flight_foregrounds_after_every_batch_keeps_the_outcome(
    world, mixed_net, mixed_reference, batch_size, monkeypatch
):
    monkeypatch.setattr(search, "RESORT_EVERY_BATCHES", 1)
    vulnerable, class_fooled, _ = reference(world, mixed_reference)
    outcomes = run_search(world, mixed_net, batch_size=batch_size)
    assert [(o.vulnerable, o.bg_class_fooled) for o in outcomes] == list(
        zip(vulnerable.tolist(), class_fooled.tolist(), strict=True)
    )


def test_early_stopping_spends_fewer_passes_than_every_pair(world, mixed_net):
    outcomes = run_search(world, mixed_net, batch_size=1, reorder=False)
    passes = sum(o.forward_passes for o in outcomes)
    assert passes < len(world["fg_ids"]) * len(world["pool_ids"])
    # batch_size 1 wastes nothing: a bg-class fooled foreground stops at the first such background
    for o in outcomes:
        assert o.forward_passes <= len(world["pool_ids"])


def test_reordering_cuts_passes_for_a_background_reliant_model(world):
    # Large worlds make the effect clear: backgrounds of the most confusable colour fool almost everyone.
    big = make_world(per_class=6, seed=1)
    net = PrototypeNet(big["fg_colours"], big["bg_colours"], fg_weight=4.0, bg_weight=20.0, unmapped=-50.0)
    fg, masks, pool = tensors(big)
    predict = Forward(wrap(net), "top1-mapped").predict
    spent = {}
    for reorder in (False, True):
        outcomes = search_backgrounds(
            fg, masks, big["fg_labels"], pool, big["pool_labels"], predict, batch_size=1, reorder=reorder
        )
        spent[reorder] = sum(o.forward_passes for o in outcomes)
    assert spent[True] < spent[False]


def test_background_blind_model_scores_its_only_fg_accuracy(world):
    net = PrototypeNet(world["fg_colours"], world["bg_colours"], fg_weight=10.0, bg_weight=0.0, unmapped=-0.2)
    predict = Forward(wrap(net), "top1-mapped").predict
    only = np.stack([only_fg(image, mask) for image, mask in zip(world["fg"], world["masks"], strict=True)])
    only_fg_pred = predict(torch.from_numpy(only).permute(0, 3, 1, 2).contiguous()).numpy()
    only_fg_accuracy = float((only_fg_pred == world["fg_labels"]).mean())
    assert 0 < only_fg_accuracy < 1
    fg, masks, pool = tensors(world)
    outcomes = search_backgrounds(
        fg, masks, world["fg_labels"], pool, world["pool_labels"], predict, batch_size=7
    )
    metrics = challenge_metrics(
        world["fg_labels"], [o.vulnerable for o in outcomes], [o.bg_class_fooled for o in outcomes]
    )
    assert metrics["challenge_accuracy"] == only_fg_accuracy


def test_constant_predictor_scores_one_ninth(world):
    outcomes = run_search(world, ConstantNet(3), batch_size=8)
    metrics = challenge_metrics(
        world["fg_labels"], [o.vulnerable for o in outcomes], [o.bg_class_fooled for o in outcomes]
    )
    assert metrics["challenge_accuracy"] == 1 / 9
    assert metrics["bg_class_fooling_rate"] == 8 / 9  # every other class: a reptile background says reptile
    assert metrics["per_class"]["reptile"]["challenge_accuracy"] == 1.0
    assert metrics["per_class"]["dog"]["challenge_accuracy"] == 0.0


def test_outcomes_from_predictions_match_the_search_reference(world, mixed_reference):
    vulnerable, class_fooled, first = reference(world, mixed_reference)
    outcomes = outcomes_from_predictions(mixed_reference, world["fg_labels"], world["pool_labels"])
    assert [o.vulnerable for o in outcomes] == vulnerable.tolist()
    assert [o.bg_class_fooled for o in outcomes] == class_fooled.tolist()
    assert [o.fooling_bg for o in outcomes] == first


def test_empty_pool_and_bad_batch_size_are_clear_errors(world, mixed_net):
    fg, masks, pool = tensors(world)
    predict = Forward(wrap(mixed_net), "top1-mapped").predict
    with pytest.raises(In9Error, match="batch_size=0"):
        search_backgrounds(fg, masks, world["fg_labels"], pool, world["pool_labels"], predict, batch_size=0)
    with pytest.raises(In9Error, match="only_bg_t"):
        search_backgrounds(
            fg, masks, world["fg_labels"], pool[:0], world["pool_labels"][:0], predict, batch_size=4
        )


# ---------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------


def test_challenge_metrics_on_a_constructed_case():
    labels = [0, 0, 0, 0, 1, 1]
    vulnerable = [True, True, False, False, True, False]
    fooled = [True, False, False, False, False, False]
    m = challenge_metrics(labels, vulnerable, fooled)
    assert m["challenge_accuracy"] == m["vulnerable_fraction"] == 0.5
    assert m["bg_class_fooling_rate"] == 1 / 6
    assert (m["num_foregrounds"], m["num_vulnerable"], m["num_bg_class_fooled"]) == (6, 3, 1)
    assert m["per_class"]["dog"]["challenge_accuracy"] == 0.5
    assert m["per_class"]["dog"]["bg_class_fooling_rate"] == 0.25
    assert m["per_class"]["bird"]["challenge_accuracy"] == 0.5
    assert set(m["per_class"]) == {"dog", "bird"}


def test_challenge_metrics_reject_inconsistent_rows():
    with pytest.raises(ValueError, match="bg_class_fooled but not vulnerable"):
        challenge_metrics([0, 1], [False, False], [False, True])
    with pytest.raises(ValueError, match="one of each"):
        challenge_metrics([0, 1], [False], [False, True])


# ---------------------------------------------------------------------------------------------------------
# run_challenge over a data source: resume, parquet, analysis
# ---------------------------------------------------------------------------------------------------------


class ArraySource:
    """A DataSource (CONTRACTS.md) over in-memory arrays: fg_mask and only_bg_t only."""

    def __init__(self, world):
        import datasets

        image = datasets.Image()
        self.fg = datasets.Dataset.from_dict(
            {
                "image": [Image.fromarray(a) for a in world["fg"]],
                "mask": [Image.fromarray(m * 255) for m in world["masks"]],
                "label": world["fg_labels"].tolist(),
                "image_id": world["fg_ids"],
            },
            features=datasets.Features(
                {
                    "image": image,
                    "mask": image,
                    "label": datasets.Value("int64"),
                    "image_id": datasets.Value("string"),
                }
            ),
        )
        self.pool = datasets.Dataset.from_dict(
            {
                "image": [Image.fromarray(a) for a in world["pool"]],
                "label": world["pool_labels"].tolist(),
                "image_id": world["pool_ids"],
            },
            features=datasets.Features(
                {"image": image, "label": datasets.Value("int64"), "image_id": datasets.Value("string")}
            ),
        )

    def variant(self, name):
        return {"fg_mask": self.fg, "only_bg_t": self.pool}[name]

    def fingerprint(self, name):
        return f"sha256:test-{name}"


def outcome_of(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "forward_passes"}


class Killed(Exception):
    pass


class Dies(torch.nn.Module):
    """Wraps a model and raises after ``calls`` forward passes (a killed run)."""

    def __init__(self, inner, calls):
        super().__init__()
        self.inner, self.calls = inner, calls

    def forward(self, x):
        self.calls -= 1
        if self.calls < 0:
            raise Killed
        return self.inner(x)


@pytest.fixture(scope="module")
def source(world):
    return ArraySource(world)


@pytest.fixture
def accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def test_run_challenge_rows_and_metrics(world, source, mixed_net, mixed_reference, accelerator, tmp_path):
    vulnerable, class_fooled, first = reference(world, mixed_reference)
    result = run_challenge(
        Forward(wrap(mixed_net), "top1-mapped", accelerator),
        source,
        batch_size=16,
        state_dir=tmp_path / "state",
        reorder=False,
        progress=False,
    )
    assert [r["fg_image_id"] for r in result.rows] == world["fg_ids"]
    assert [r["vulnerable"] for r in result.rows] == vulnerable.tolist()
    assert [r["bg_class_fooled"] for r in result.rows] == class_fooled.tolist()
    assert [r["fooling_bg_image_id"] for r in result.rows] == [
        None if b is None else world["pool_ids"][b] for b in first
    ]
    expected = challenge_metrics(world["fg_labels"], vulnerable, class_fooled)
    assert {k: result.metrics[k] for k in expected} == expected
    assert result.metrics["pool_size"] == len(world["pool_ids"])
    assert result.metrics["forward_passes"] == sum(r["forward_passes"] for r in result.rows)
    assert result.analysis is None

    path = write_challenge_parquet(result.rows, tmp_path / "out" / "challenge.parquet")
    table = pq.read_table(path)
    assert tuple(table.column_names) == CHALLENGE_COLUMNS
    assert table.to_pylist() == result.rows
    robust = next(r for r in table.to_pylist() if not r["vulnerable"])
    assert robust["fooling_bg_image_id"] is None and robust["fooling_prediction"] is None


def test_killed_run_resumes_where_it_stopped(world, source, mixed_net, accelerator, tmp_path, monkeypatch):
    monkeypatch.setattr(challenge_state, "STATE_FLUSH_SECONDS", 0.0)
    full = run_challenge(
        Forward(wrap(mixed_net), "top1-mapped", accelerator),
        source,
        batch_size=4,
        state_dir=tmp_path / "full",
        reorder=False,
        progress=False,
    )
    state = tmp_path / "killed"
    with pytest.raises(Killed):
        run_challenge(
            Forward(wrap(Dies(mixed_net, 60)), "top1-mapped", accelerator),
            source,
            batch_size=4,
            state_dir=state,
            reorder=False,
            progress=False,
        )
    saved = [json.loads(line) for line in (state / "outcomes-0.jsonl").read_text().splitlines()]
    assert 0 < len(saved) < len(world["fg_ids"])
    with open(state / "outcomes-0.jsonl", "a") as handle:
        handle.write('{"fg_image_id": "fg0_00", "lab')  # the line being written when it died

    counting = Dies(mixed_net, 10**9)
    resumed = run_challenge(
        Forward(wrap(counting), "top1-mapped", accelerator),
        source,
        batch_size=4,
        state_dir=state,
        reorder=False,
        progress=False,
    )
    # Outcomes are identical; forward_passes (the cost) may differ where the tail of the queue was batched
    # differently.
    assert [outcome_of(r) for r in resumed.rows] == [outcome_of(r) for r in full.rows]
    assert {k: v for k, v in resumed.metrics.items() if k != "forward_passes"} == {
        k: v for k, v in full.metrics.items() if k != "forward_passes"
    }
    spent = 10**9 - counting.calls
    assert 0 < spent < -(-full.metrics["forward_passes"] // 4)  # fewer batches than the whole run

    again = Dies(mixed_net, 0)  # a finished run recomputes nothing
    assert (
        run_challenge(
            Forward(wrap(again), "top1-mapped", accelerator),
            source,
            batch_size=4,
            state_dir=state,
            progress=False,
        ).rows
        == resumed.rows
    )


def test_state_of_another_run_is_refused(source, mixed_net, accelerator, tmp_path):
    run_challenge(
        Forward(wrap(mixed_net), "top1-mapped", accelerator),
        source,
        batch_size=64,
        state_dir=tmp_path / "s",
        progress=False,
    )
    with pytest.raises(In9Error, match=r"belongs to another run \(differs in label_mode\)"):
        run_challenge(
            Forward(wrap(mixed_net), "restricted", accelerator),
            source,
            batch_size=64,
            state_dir=tmp_path / "s",
            progress=False,
        )
    other_weights = PrototypeNet(np.zeros((9, 3)), np.zeros((9, 3)))
    with pytest.raises(In9Error, match="differs in weights"):
        run_challenge(
            Forward(wrap(other_weights), "top1-mapped", accelerator),
            source,
            batch_size=64,
            state_dir=tmp_path / "s",
            progress=False,
        )


def test_analysis_rates_figures_and_sample(world, source, mixed_net, mixed_reference, accelerator, tmp_path):
    rates, tried = attack_success_rates(mixed_reference, world["fg_labels"], world["pool_labels"])
    assert (tried == len(world["fg_ids"]) - 3).all()  # 3 foregrounds per class share each background's class
    result = run_challenge(
        Forward(wrap(mixed_net), "top1-mapped", accelerator),
        source,
        batch_size=32,
        state_dir=tmp_path / "state",
        analysis=True,
        output_dir=tmp_path,
        progress=False,
    )
    table = pq.read_table(tmp_path / result.analysis["backgrounds"]).to_pylist()
    assert [r["bg_image_id"] for r in table] == world["pool_ids"]
    assert np.allclose([r["attack_success_rate"] for r in table], rates)
    for block in result.analysis["per_class"].values():
        top = block["top"]
        assert [t["asr"] for t in top] == sorted((t["asr"] for t in top), reverse=True)
    assert sum(result.analysis["histogram"]["counts"]) == len(world["pool_ids"])
    for figure in result.analysis["figures"].values():
        with Image.open(tmp_path / figure) as image:
            assert image.format == "PNG" and image.width > 300
    # A full analysis also decides every foreground, exactly: same outcomes as the search.
    vulnerable, class_fooled, _ = reference(world, mixed_reference)
    assert [r["vulnerable"] for r in result.rows] == vulnerable.tolist()
    assert [r["bg_class_fooled"] for r in result.rows] == class_fooled.tolist()

    sampled = run_challenge(
        Forward(wrap(mixed_net), "top1-mapped", accelerator),
        source,
        batch_size=32,
        state_dir=tmp_path / "state2",
        analysis=True,
        analysis_sample=10,
        output_dir=tmp_path / "sampled",
        progress=False,
    )
    assert sampled.analysis["num_foregrounds"] == 10
    assert [(r["vulnerable"], r["bg_class_fooled"]) for r in sampled.rows] == list(
        zip(vulnerable.tolist(), class_fooled.tolist(), strict=True)
    )
    chosen = sample_foregrounds(world["fg_labels"], 10)
    assert list(chosen) == sorted(set(chosen.tolist())) and list(
        sample_foregrounds(world["fg_labels"], 10)
    ) == list(chosen)
    with pytest.raises(In9Error, match="analysis_sample=0"):
        sample_foregrounds(world["fg_labels"], 0)


def test_on_a_synthetic_export_equals_every_pair(synthetic_export, accelerator, tmp_path):
    """Through the evaluator's own DataSource: decoded images and masks, composited as
    fg * mask + bg * (1 - mask), every pair."""
    from evaluator.data import open_data

    data = open_data(str(synthetic_export))
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 8, stride=8), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(10)
    )
    net(torch.zeros(1, 3, 64, 64))
    loaded = wrap_module(
        net,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        input_size=64,
        model_id="conv",
        label_space=LabelSpace("label-map", UNMAPPED_TO_IN9),
    )
    result = run_challenge(
        Forward(loaded, "top1-mapped", accelerator),
        data,
        batch_size=24,
        state_dir=tmp_path / "state",
        progress=False,
    )

    fg_rows, pool_rows = data.variant("fg_mask"), data.variant("only_bg_t")
    pool = [np.asarray(row["image"].convert("RGB")) for row in pool_rows]
    predict = Forward(loaded, "top1-mapped").predict
    preds = []
    for row in fg_rows:
        image, mask = np.asarray(row["image"].convert("RGB")), (np.asarray(row["mask"]) > 0).astype(np.uint8)
        batch = np.stack([composite(image, mask, bg) for bg in pool])
        preds.append(predict(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()).numpy())
    preds = np.stack(preds)
    labels, pool_labels = np.asarray(fg_rows["label"]), np.asarray(pool_rows["label"])
    fooled = preds != labels[:, None]
    assert [r["fg_image_id"] for r in result.rows] == list(fg_rows["image_id"])
    assert [r["vulnerable"] for r in result.rows] == fooled.any(1).tolist()
    assert [r["bg_class_fooled"] for r in result.rows] == (fooled & (preds == pool_labels)).any(1).tolist()
    assert result.metrics["pool_size"] == len(pool) == 36
