"""Sweeps: several models in one in9-eval run (decoded once), background-draw seeds, --skip-existing."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from evaluator.api import evaluate
from evaluator.cli.eval import main
from evaluator.config import EvalConfig, parse_seeds
from evaluator.data import open_data
from evaluator.images import RunImages
from evaluator.leaderboard.validate import validate_submission
from evaluator.metrics import mean_std, seed_metrics
from evaluator.runtime.decode import decode_column
from evaluator.runtime.pixels import PixelStore
from evaluator.sweep import ModelSpec, evaluate_many
from in9_builder.classes import MIXED_VARIANTS
from in9_builder.errors import In9Error
from tests.fixtures_builder import make_synthetic_export

QUIET = ["--no-progress", "--num-workers", "0"]


# --- pure pieces


def test_seed_metrics_equal_the_statistics_module():
    accuracy = {
        0: {"mixed_same": 0.70, "mixed_rand": 0.50, "mixed_next": 0.40},
        2: {"mixed_same": 0.80, "mixed_rand": 0.55, "mixed_next": 0.30},
        1: {"mixed_same": 0.75, "mixed_rand": 0.65, "mixed_next": 0.35},
    }
    block = seed_metrics(accuracy)
    assert block["seeds"] == [0, 1, 2]
    assert block["per_seed"]["2"] == {
        "accuracy": accuracy[2],
        "bg_gap": pytest.approx(0.25, abs=1e-12),
    }
    gaps = [accuracy[s]["mixed_same"] - accuracy[s]["mixed_rand"] for s in (0, 1, 2)]
    assert block["summary"]["bg_gap"]["mean"] == pytest.approx(statistics.mean(gaps), abs=1e-12)
    assert block["summary"]["bg_gap"]["std"] == pytest.approx(statistics.stdev(gaps), abs=1e-12)
    rand = [0.50, 0.65, 0.55]
    assert block["summary"]["mixed_rand"]["std"] == pytest.approx(statistics.stdev(rand), abs=1e-12)
    assert mean_std([0.3]) == {"mean": 0.3, "std": None}  # one draw has no spread


@pytest.mark.parametrize(
    ("text", "seeds"), [("0,1,2", (0, 1, 2)), ("5", (0, 1, 2, 3, 4)), ("7,3", (3, 7)), (" 1 , 4", (1, 4))]
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,-1", "a comma-separated list of non-negative integers"),
        ("a,b", "a comma-separated list"),
        ("0", "a count of draws must be 1 or more"),
        ("1,1", "a seed is listed twice"),
        ("", "a comma-separated list"),
    ],
)
def test_parse_seeds_refuses(text, message):
    with pytest.raises(In9Error, match=message) as err:
        parse_seeds(text)
    assert err.value.argument == "seeds"


def test_config_refuses_bad_seed_tuples():
    with pytest.raises(In9Error, match=r"seeds=\[0, 1\]: give a tuple"):
        EvalConfig(seeds=[0, 1])
    with pytest.raises(In9Error, match="distinct non-negative"):
        EvalConfig(seeds=(0, -2))


def test_pixel_store_round_trips_ragged_arrays_and_cleans_up(tmp_path):
    class Rows:  # the two methods of datasets.Dataset the store uses
        def __init__(self, arrays):
            self.arrays = arrays

        def __len__(self):
            return len(self.arrays)

        def select(self, indices):
            return Rows([self.arrays[i] for i in indices])

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in [(5, 7), (9, 4), (5, 7)]]
    import evaluator.runtime.pixels as pixels

    original = pixels.decode_column
    pixels.decode_column = lambda rows, column: list(rows.arrays)
    try:
        with PixelStore(tmp_path) as store:
            stored = store.get("k", lambda: store.write(Rows(arrays)))
            assert store.get("k", lambda: pytest.fail("decoded twice")) is stored
            assert [a.shape for a in stored] == [(5, 7, 3), (9, 4, 3), (5, 7, 3)]
            assert all(np.array_equal(a, b) for a, b in zip(stored, arrays, strict=True))
            assert np.array_equal(stored.stack([0, 2]), np.stack([arrays[0], arrays[2]]))
            folder = store.folder
        assert not folder.exists()
    finally:
        pixels.decode_column = original


def test_model_spec_parses_revisions():
    assert ModelSpec.parse(" org/name@abc123 ") == ModelSpec("org/name", "abc123")
    assert ModelSpec.parse("./local/folder") == ModelSpec("./local/folder", None)
    assert ModelSpec("org/resnet-50").slug == "resnet-50"


# --- seeded draws equal the builder's export


@pytest.fixture(scope="module")
def export_seed_1(tmp_path_factory):
    """The synthetic_export's data (same scenes) exported with background seed 1."""
    return make_synthetic_export(tmp_path_factory.mktemp("seed1"), seed=1, train_per_class=0)


@pytest.mark.parametrize("limit", [None, 2])
def test_seeded_draws_are_the_rows_of_the_export_with_that_seed(
    synthetic_export, export_seed_1, tmp_path, limit
):
    source = open_data(synthetic_export, limit=limit, cache_dir=tmp_path / "hf")
    reference = open_data(export_seed_1, limit=limit, cache_dir=tmp_path / "hf")
    images = RunImages(source, PixelStore(tmp_path / "pixels"), shared=True)
    try:
        for variant in MIXED_VARIANTS:
            seeded = images.seeded(variant, 1)
            expected = reference.variant(variant)
            for column in ("image_id", "fg_image_id", "bg_image_id", "label", "bg_label"):
                assert seeded.rows[column] == list(expected[column]), (variant, column)
            rendered = [seeded.images[i][1] for i in range(len(seeded.images))]
            exported = decode_column(expected)
            assert all(np.array_equal(a, b) for a, b in zip(rendered, exported, strict=True)), variant
    finally:
        images.close()


# --- evaluate(seeds=...)


@pytest.fixture(scope="module")
def seeded_run(tiny_models, synthetic_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeded") / "out"
    results = evaluate(
        tiny_models["in1k"],
        synthetic_export,
        "original,mixed_same,mixed_rand",
        seeds=(0, 1, 2),
        use_cache=False,
        progress=False,
        num_workers=0,
        output_dir=out,
    )
    return results, out


def test_seed_metrics_are_recomputed_from_the_predictions_file(seeded_run):
    results, out = seeded_run
    table = pq.read_table(out / "predictions.parquet").to_pylist()
    doc = json.loads((out / "results.json").read_text())
    seeds = doc["metrics"]["seeds"]
    assert seeds["seeds"] == [0, 1, 2] and doc["protocol"]["seeds"] == [0, 1, 2]
    by_seed = {}
    for row in table:
        if row["seed"] is not None:
            key = (row["seed"], row["variant"])
            by_seed.setdefault(key, []).append(row["prediction"] == row["label"])
    assert sorted(by_seed) == [(s, v) for s in (0, 1, 2) for v in ("mixed_rand", "mixed_same")]
    assert all(len(rows) == 36 for rows in by_seed.values())
    for variant in ("mixed_same", "mixed_rand"):
        values = [float(np.mean(by_seed[(s, variant)])) for s in (0, 1, 2)]
        assert seeds["summary"][variant]["mean"] == pytest.approx(statistics.mean(values), abs=1e-12)
        assert seeds["summary"][variant]["std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
    gaps = [np.mean(by_seed[(s, "mixed_same")]) - np.mean(by_seed[(s, "mixed_rand")]) for s in (0, 1, 2)]
    assert seeds["summary"]["bg_gap"]["std"] == pytest.approx(statistics.stdev(gaps), abs=1e-12)
    # The headline rows are the data's own images: no seed; the inputs of the draws are recorded.
    headline = [row for row in table if row["seed"] is None]
    assert len(headline) == 3 * 36 and {"fg_mask", "only_bg_t"} <= set(doc["data"]["variants"])
    summary = (out / "summary.md").read_text()
    mean, std = seeds["summary"]["mixed_rand"]["mean"], seeds["summary"]["mixed_rand"]["std"]
    assert f"mixed_rand over 3 draws (seeds 0, 1, 2) | {100 * mean:.1f} ± {100 * std:.1f} %" in summary


def test_seed_zero_of_a_seed_zero_export_scores_its_own_mixed_images(seeded_run):
    results, _ = seeded_run  # synthetic_export was exported with seed 0: the draw is the same
    per_seed = results.metrics["seeds"]["per_seed"]["0"]["accuracy"]
    assert per_seed["mixed_rand"] == results.accuracy("mixed_rand")
    assert per_seed["mixed_same"] == results.accuracy("mixed_same")


def test_validation_recomputes_the_seed_block(seeded_run, tmp_path, synthetic_export):
    _, out = seeded_run
    from evaluator.leaderboard.registry import load_registry, register_export

    registry = tmp_path / "registry.json"
    register_export(synthetic_export, registry)
    options = dict(registry=load_registry(registry), allow_unpinned=True)
    assert validate_submission(out / "results.json", **options).ok
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("predictions.parquet", "summary.md"):
        (copy / name).write_bytes((out / name).read_bytes())
    doc = json.loads((out / "results.json").read_text())
    doc["metrics"]["seeds"]["summary"]["mixed_rand"]["std"] += 0.01
    (copy / "results.json").write_text(json.dumps(doc))
    problems = [str(p) for p in validate_submission(copy / "results.json", **options).problems]
    assert any("metrics.seeds.summary.mixed_rand.std" in p for p in problems), problems
    del doc["metrics"]["seeds"]["per_seed"]["2"]
    doc["metrics"]["seeds"]["summary"]["mixed_rand"]["std"] -= 0.01
    (copy / "results.json").write_text(json.dumps(doc))
    problems = [str(p) for p in validate_submission(copy / "results.json", **options).problems]
    assert any("metrics.seeds" in p for p in problems), problems


def test_seeds_need_a_mixed_variant_and_the_draw_inputs(tiny_models, synthetic_export, tmp_path):
    with pytest.raises(In9Error, match="none of original, only_fg is one") as err:
        evaluate(tiny_models["in9"], synthetic_export, "original,only_fg", seeds=(0,), use_cache=False)
    assert err.value.argument == "seeds"
    partial = make_synthetic_export(tmp_path, variants="original,mixed_rand,only_bg_t", train_per_class=0)
    with pytest.raises(In9Error, match="needs the data's fg_mask and only_bg_t configs"):
        evaluate(tiny_models["in9"], partial, "mixed_rand", seeds=(0, 1), use_cache=False)


# --- OOM: the batch is halved


def test_out_of_memory_halves_the_batch_and_records_it(tiny_models, synthetic_export, monkeypatch):
    from evaluator.forward import Forward

    options = dict(use_cache=False, progress=False, num_workers=0, limit=2, batch_size=16)
    plain = evaluate(tiny_models["in9"], synthetic_export, "original", **options)
    real_call = Forward.__call__

    def small_device(self, images, **kwargs):
        if len(images) > 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_call(self, images, **kwargs)

    monkeypatch.setattr(Forward, "__call__", small_device)
    halved = evaluate(tiny_models["in9"], synthetic_export, "original", **options)
    assert halved.environment["batch_size_halved"] == {"original": 4}
    assert halved.protocol["batch_size"] == 16
    assert halved.predictions.equals(plain.predictions)


# --- several models in one run


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("broken") / "tiny-broken"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    return folder


def _single(model, data, out, extra=()):
    args = ["--model", str(model), "--data", str(data), "--output-dir", str(out), "--no-cache", *QUIET]
    return main(args + ["--variants", "original,mixed_same,mixed_rand,only_bg_t", "--limit", "2", *extra])


def _without_times(path):
    doc = json.loads(path.read_text())
    doc.pop("created_at")
    return doc


def test_a_sweep_writes_what_single_runs_write_and_reports_the_broken_model(
    tiny_models, broken_model, synthetic_export, tmp_path, capsys
):
    models = tmp_path / "models.txt"
    models.write_text(
        f"# three models\n{tiny_models['in1k']}\n\n{broken_model}  # broken\n{tiny_models['in9']}\n"
    )
    extra = ["--seeds", "1,2", "--challenge"]
    code = main(
        ["--models", str(models), "--data", str(synthetic_export), "--output-dir", str(tmp_path / "sweep")]
        + ["--variants", "original,mixed_same,mixed_rand,only_bg_t", "--limit", "2", "--no-cache", *QUIET]
        + extra
    )
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.out.splitlines()
    broken = [line for line in lines if str(broken_model) in line]
    assert len(broken) == 1 and "failed" in broken[0] and "unreadable config.json" in broken[0]
    assert sum(" ok " in line for line in lines) == 2
    assert "3 models: 2 scored or skipped, 1 failed" in captured.out
    assert not (tmp_path / "sweep" / "tiny-broken").exists()
    for key in ("in1k", "in9"):
        slug = tiny_models[key].name
        assert _single(tiny_models[key], synthetic_export, tmp_path / "single" / slug, extra) == 0
        swept, single = tmp_path / "sweep" / slug, tmp_path / "single" / slug
        for name in ("predictions.parquet", "challenge.parquet"):
            assert (swept / name).read_bytes() == (single / name).read_bytes(), (key, name)
        assert _without_times(swept / "results.json") == _without_times(single / "results.json")


def test_skip_existing_keeps_finished_results_of_the_same_protocol(tiny_models, synthetic_export, tmp_path):
    options = dict(variants="original", limit=2, use_cache=False, progress=False, num_workers=0)
    models = [str(tiny_models["in9"]), str(tiny_models["in1k"])]
    first = evaluate_many(models, synthetic_export, output_dir=tmp_path, **options)
    assert [o.status for o in first] == ["ok", "ok"]
    written = (tmp_path / tiny_models["in9"].name / "results.json").stat().st_mtime_ns
    again = evaluate_many(models, synthetic_export, output_dir=tmp_path, skip_existing=True, **options)
    assert [o.status for o in again] == ["skipped", "skipped"]
    assert (tmp_path / tiny_models["in9"].name / "results.json").stat().st_mtime_ns == written
    other = evaluate_many(
        models[:1],
        synthetic_export,
        output_dir=tmp_path,
        skip_existing=True,
        label_mode="restricted",
        **options,
    )
    assert [o.status for o in other] == ["ok"]  # another protocol is not a finished result of this one
    namesake = tmp_path / "elsewhere" / tiny_models["in1k"].name  # same folder name, another model
    namesake.parent.mkdir()
    namesake.symlink_to(tiny_models["in9"], target_is_directory=True)
    other = evaluate_many(
        [str(namesake)], synthetic_export, output_dir=tmp_path, skip_existing=True, **options
    )
    assert [o.status for o in other] == ["ok"]  # in1k's folder holds another model's result


def test_a_sweep_shows_its_progress_and_refuses_unknown_options(
    tiny_models, synthetic_export, tmp_path, capsys
):
    models = [str(tiny_models["in9"]), str(tiny_models["in1k"])]
    with pytest.raises(In9Error, match="input_size: not an option of evaluate_many") as err:
        evaluate_many(models, synthetic_export, input_size=64)
    assert err.value.argument == "input_size"
    options = dict(limit=1, use_cache=False, num_workers=0, output_dir=tmp_path)
    evaluate_many(models, synthetic_export, "original", **options)
    bars = capsys.readouterr().err
    assert "models:" in bars and "2/2" in bars and tiny_models["in1k"].name in bars  # done/total, current


def _bad(argv, tmp_path, capsys):
    out = tmp_path / "never"
    code = main(argv + ["--output-dir", str(out), *QUIET])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    return err[0]


def test_sweep_input_errors_are_one_line_and_write_nothing(tiny_models, synthetic_export, tmp_path, capsys):
    data = ["--data", str(synthetic_export)]
    models = tmp_path / "models.txt"
    models.write_text(f"{tiny_models['in9']}\n# fine\nnot a valid id!\n")
    line = _bad(["--models", str(models), *data], tmp_path, capsys)
    assert line.startswith(f"error: --models {models}: line 3: 'not a valid id!'")
    models.write_text("org/not-cached-model\n")
    line = _bad(["--models", str(models), *data], tmp_path, capsys)
    assert "line 1: 'org/not-cached-model': not in the local Hub cache" in line
    same = ["--model", str(tiny_models["in9"]), "--model", f"{tiny_models['in9']}/"]
    assert "would both write tiny-resnet-in9/" in _bad(same + data, tmp_path, capsys)
    for seeds, message in (("1,x", "--seeds 1,x: give a comma-separated list"), ("0", "count of draws")):
        assert message in _bad(
            ["--model", str(tiny_models["in9"]), "--seeds", seeds, *data], tmp_path, capsys
        )
    partial = make_synthetic_export(tmp_path / "partial", variants="original,mixed_rand", train_per_class=0)
    two = ["--model", str(tiny_models["in9"]), "--model", str(tiny_models["in1k"])]
    line = _bad(two + ["--data", str(partial), "--seeds", "2"], tmp_path, capsys)
    assert line.startswith("error: --seeds 0,1: re-rendering the mixed variants needs the data's fg_mask")
    rev = ["--revision", "abc"]
    assert "pin each model of a sweep as id@revision" in _bad(two + rev + data, tmp_path, capsys)


@pytest.mark.parametrize(("parallel_forward_s", "chosen"), [(0.15, "parallel"), (0.25, "one")])
def test_pre_decoded_images_run_on_whichever_stream_count_is_faster(parallel_forward_s, chosen):
    from evaluator.predict import _run_streams

    class FakeStreams:  # one stream forwards a batch in 0.1 s; two streams each take parallel_forward_s
        def __init__(self):
            self.calls = []

        def run(self, budget=None, num_threads=None):
            self.calls.append(("one", budget))
            return (0.0, 0.1)

        def run_parallel(self, streams, num_threads, budget=None):
            self.calls.append(("parallel", budget))
            return [(0.0, parallel_forward_s)] * streams

    run = FakeStreams()
    _run_streams(run, [np.zeros((2, 2, 3), np.uint8)] * 40, 2, 2)
    # the 2-batch probe on one stream, 2 batches per stream on two, then the rest on the faster
    assert run.calls == [("one", 2), ("parallel", 2), (chosen, None)]
