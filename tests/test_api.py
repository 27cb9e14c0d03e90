"""evaluate() end to end on the synthetic export: outputs, caching and resume, label spaces, bg_gap signs."""

import json
import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from evaluator.api import evaluate
from evaluator.data import open_data
from evaluator.model.labels import LabelSpace
from evaluator.results.schema import from_predictions
from in9_builder.classes import IMAGE_VARIANTS
from in9_builder.errors import In9Error

IN9 = LabelSpace("in9", np.arange(9))
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_full_run_writes_every_file_and_field(tiny_models, synthetic_export, tmp_path):
    out = tmp_path / "out"
    results = evaluate(
        str(tiny_models["in1k"]),
        str(synthetic_export),
        output_dir=out,
        cache_dir=tmp_path / "cache",
        batch_size=16,
        progress=False,
    )
    names = sorted(p.name for p in out.iterdir())
    assert {"results.json", "predictions.parquet", "summary.md", ".eval_results"} <= set(names)
    doc = json.loads((out / "results.json").read_text())
    preprocessing = doc["model"].pop("preprocessing")  # which preprocessing ran (test_preprocess.py)
    assert preprocessing["path"] == "tensor" and preprocessing["max_abs_diff"] <= 1e-5
    assert doc["model"] == {
        "id": str(tiny_models["in1k"]),
        "revision": None,
        "source": "local",
        "num_labels": 1000,
        "label_space": "imagenet-1k",
        "num_params": 438_456,
    }
    assert doc["protocol"] == {
        "label_mode": "top1-mapped",
        "preprocess": "paper",
        "precision": "no",
        "batch_size": 16,
        "limit": None,
    }
    summary = json.loads((synthetic_export / "in9_export.json").read_text())
    assert list(doc["data"]["variants"]) == list(IMAGE_VARIANTS)
    for v in IMAGE_VARIANTS:
        assert doc["data"]["variants"][v] == {
            "fingerprint": summary["configs"][v]["fingerprint"],
            "count": 36,
        }
    assert set(doc["metrics"]) == {"accuracy", "bg_gap", "bg_reliance"}
    assert doc["metrics"]["bg_gap"]["n_pairs"] == 36
    env = doc["environment"]
    assert (
        env["device"] == "cpu" and env["num_processes"] == 1 and env["packages"]["torch"].startswith("2.13")
    )
    table = pq.read_table(out / "predictions.parquet")
    assert table.num_rows == 8 * 36
    assert table.column_names == [
        "variant",
        "seed",
        "image_id",
        "fg_image_id",
        "label",
        "prediction",
        "raw_top1",
        "scores",
    ]
    assert from_predictions(table) == doc["metrics"]
    assert table["seed"].null_count == table.num_rows  # no --seeds: every row is the data's own image
    preds = np.asarray(table["prediction"])
    raw = np.asarray(table["raw_top1"])
    from in9_builder.classes import IN1K_TO_IN9

    assert np.array_equal(preds, IN1K_TO_IN9[raw])  # top1-mapped: the paper's rule, row by row
    assert results.accuracy("original") == doc["metrics"]["accuracy"]["original"]["value"]


def test_nine_way_model_and_batch_size_independence(tiny_models, synthetic_export, tmp_path):
    kwargs = dict(variants="original,mixed_rand", cache_dir=tmp_path, use_cache=False, progress=False)
    a = evaluate(str(tiny_models["in9"]), str(synthetic_export), batch_size=5, **kwargs)
    b = evaluate(str(tiny_models["in9"]), str(synthetic_export), batch_size=36, num_workers=0, **kwargs)
    assert a.model["label_space"] == "in9"
    assert a.predictions.column("prediction").equals(b.predictions.column("prediction"))
    assert np.allclose(
        np.stack(a.predictions["scores"].to_numpy(zero_copy_only=False)),
        np.stack(b.predictions["scores"].to_numpy(zero_copy_only=False)),
        atol=1e-5,
    )
    assert set(a.metrics["accuracy"]) == {"original", "mixed_rand"} and "bg_gap" not in a.metrics


def test_cpu_streams_one_process_only_and_their_predictions_equal_one_stream(
    tiny_models, synthetic_export, tmp_path, monkeypatch
):
    from evaluator.runtime import streams as predict

    cpu = SimpleNamespace(device=torch.device("cpu"), num_processes=1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert predict.inference_streams(cpu) == 2
        assert predict.inference_streams(cpu, num_workers=2) == 1  # worker processes decode instead
        assert predict.inference_streams(SimpleNamespace(device=torch.device("cpu"), num_processes=2)) == 1
        assert predict.inference_streams(SimpleNamespace(device=torch.device("cuda"), num_processes=1)) == 1
        torch.set_num_threads(1)
        assert predict.inference_streams(cpu) == 1
    finally:
        torch.set_num_threads(threads)
    kwargs = dict(variants="original,only_fg", cache_dir=tmp_path, use_cache=False, progress=False)
    parallel_runs = []
    real_parallel = predict.BatchStreams.run_parallel
    monkeypatch.setattr(
        predict.BatchStreams,
        "run_parallel",
        lambda self, *a: parallel_runs.append(a) or real_parallel(self, *a),
    )
    runs = {}
    # 36 rows in batches of 5: 8 batches, the last one short. Share 0: always streams after the 2-batch
    # probe; share inf: decoding never pays, one stream throughout.
    for name, streams, share in (
        ("one", 1, 0.0),
        ("two", 2, 0.0),
        ("three", 3, 0.0),
        ("kept one", 2, np.inf),
    ):
        monkeypatch.setattr(predict, "inference_streams", lambda *a, n=streams, **k: n)
        monkeypatch.setattr(predict, "STREAMS_MIN_DECODE_SHARE", share)
        runs[name] = evaluate(str(tiny_models["in1k"]), str(synthetic_export), batch_size=5, **kwargs)
    n = torch.get_num_threads()  # (streams, threads each), once per variant
    assert parallel_runs == [(2, max(1, n // 2))] * 2 + [(3, max(1, n // 3))] * 2
    for name in ("two", "three", "kept one"):
        assert (
            runs[name]
            .predictions.drop_columns(["scores"])
            .equals(runs["one"].predictions.drop_columns(["scores"]))
        )
        assert np.allclose(
            np.stack(runs[name].predictions["scores"].to_numpy(zero_copy_only=False)),
            np.stack(runs["one"].predictions["scores"].to_numpy(zero_copy_only=False)),
            atol=1e-5,
        )
        assert runs[name].metrics == runs["one"].metrics


def test_a_failing_stream_stops_the_run_with_its_error(synthetic_export, tmp_path, monkeypatch):
    from evaluator.runtime import streams as predict

    monkeypatch.setattr(predict, "inference_streams", lambda *a, **k: 2)
    monkeypatch.setattr(predict, "STREAMS_MIN_DECODE_SHARE", 0.0)
    model = CountingModule(fail_on_call=4)  # after the 2-batch probe, in one of the 2 streams
    with pytest.raises(RuntimeError, match="killed mid-variant"):
        evaluate(
            model,
            str(synthetic_export),
            variants="original",
            mean=MEAN,
            std=STD,
            label_space=IN9,
            input_size=64,
            batch_size=2,
            cache_dir=tmp_path,
            progress=False,
        )
    assert model.calls < 18  # the other stream stopped at its next batch instead of finishing the variant


class CountingModule(torch.nn.Module):
    """A fixed random 9-way classifier that counts forward calls and can fail on the n-th."""

    def __init__(self, fail_on_call: int | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.head = torch.nn.Linear(3 * 4 * 4, 9)
        self.calls = 0
        self.fail_on_call = fail_on_call
        self._lock = threading.Lock()  # CPU runs forward 2 batches at once (predict.inference_streams)

    def forward(self, x):
        with self._lock:
            self.calls += 1
            call = self.calls
        if call == self.fail_on_call:
            raise RuntimeError("killed mid-variant")
        return self.head(torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1))


def test_rerun_is_instant_and_a_killed_run_resumes(synthetic_export, tmp_path):
    kwargs = dict(
        mean=MEAN,
        std=STD,
        label_space=IN9,
        input_size=64,
        batch_size=12,
        cache_dir=tmp_path,
        num_workers=0,
        progress=False,
    )
    crashing = CountingModule(fail_on_call=5)  # 3 batches per variant: dies in the 2nd batch of variant 2
    with pytest.raises(RuntimeError, match="killed mid-variant"):
        evaluate(crashing, str(synthetic_export), **kwargs)
    resumed = CountingModule()
    results = evaluate(resumed, str(synthetic_export), **kwargs)
    origin = results.environment["prediction_origin"]
    assert origin["original"] == "cache" and all(origin[v] == "computed" for v in IMAGE_VARIANTS[1:])
    assert resumed.calls == 7 * 3  # the finished variant was not recomputed
    again = CountingModule()
    rerun = evaluate(again, str(synthetic_export), **kwargs)
    assert again.calls == 0 and set(rerun.environment["prediction_origin"].values()) == {"cache"}
    assert rerun.metrics == results.metrics
    fresh = evaluate(CountingModule(), str(synthetic_export), use_cache=False, **kwargs)
    assert fresh.metrics == results.metrics


class NearestNeighbour(torch.nn.Module):
    """Predicts the label of the nearest reference image in pixel space (a deliberately shallow model)."""

    def __init__(self, references: torch.Tensor, labels: list[int]):
        super().__init__()
        self.register_buffer("refs", references.flatten(1))
        self.register_buffer("onehot", torch.nn.functional.one_hot(torch.tensor(labels), 9).float())

    def forward(self, x):
        return self.onehot[torch.cdist(x.flatten(1), self.refs).argmin(1)]


def _reference_model(data, variant: str) -> NearestNeighbour:
    from evaluator.model.preprocess import Preprocess

    ds = data.variant(variant)
    images = torch.stack(
        [torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1) for img in ds["image"]]
    )
    pre = Preprocess(mean=MEAN, std=STD, input_size=tuple(images.shape[-2:]))
    return NearestNeighbour(pre(images), ds["label"])


def test_background_only_and_foreground_only_models_give_the_expected_bg_gap(synthetic_export, tmp_path):
    data = open_data(str(synthetic_export), cache_dir=tmp_path)
    kwargs = dict(
        mean=MEAN,
        std=STD,
        label_space=IN9,
        input_size=64,
        variants="mixed_same,mixed_rand",
        cache_dir=tmp_path,
        use_cache=False,
        num_workers=0,
        progress=False,
    )
    # Looks only at backgrounds: nearest Only-BG-T image (the pool the mixed backgrounds come from).
    bg = evaluate(_reference_model(data, "only_bg_t"), data, **kwargs).metrics
    # Looks only at foregrounds: nearest Only-FG image.
    fg = evaluate(_reference_model(data, "only_fg"), data, **kwargs).metrics
    same, rand = data.variant("mixed_same"), data.variant("mixed_rand")
    rand_bg_matches = float(np.mean(np.asarray(rand["bg_label"]) == np.asarray(rand["label"])))
    assert bg["accuracy"]["mixed_same"]["value"] > 0.9
    assert bg["bg_gap"]["value"] > 0.5 and bg["bg_gap"]["ci95"][0] > 0.3
    assert bg["accuracy"]["mixed_rand"]["value"] <= rand_bg_matches + 0.15
    assert (
        abs(fg["bg_gap"]["value"]) < 0.15 and fg["bg_gap"]["ci95"][0] <= 0 <= fg["bg_gap"]["ci95"][1] + 1e-9
    )
    assert len(same) == len(rand) == bg["bg_gap"]["n_pairs"]


def test_user_errors_before_any_work(tiny_models, synthetic_export, tmp_path):
    model = str(tiny_models["in9"])
    with pytest.raises(In9Error, match="^variants: unknown variant 'mixed'"):
        evaluate(model, str(synthetic_export), "original,mixed")
    with pytest.raises(In9Error, match="label_mode='top5'"):
        evaluate(model, str(synthetic_export), label_mode="top5")
    with pytest.raises(ValueError, match=r"^batch_size=0: use 1 or more$") as caught:
        evaluate(model, str(synthetic_export), batch_size=0)
    assert isinstance(caught.value, In9Error) and caught.value.argument == "batch_size"
    with pytest.raises(In9Error, match="bacth_size: not an evaluation option; known: label_mode, "):
        evaluate(model, str(synthetic_export), bacth_size=8)
    if not torch.cuda.is_available():
        with pytest.raises(In9Error, match="precision='fp16' needs a GPU"):
            evaluate(model, str(synthetic_export), precision="fp16")
    with pytest.raises(In9Error, match="pass mean= and std="):
        evaluate(torch.nn.Linear(2, 9), str(synthetic_export))


def test_collate_keeps_channels_last_and_handles_mixed_sizes():
    from evaluator.forward import Forward
    from evaluator.model.loading import wrap_module
    from evaluator.model.preprocess import Preprocess
    from evaluator.runtime.decode import collate

    a = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    b = np.random.default_rng(1).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    indices, batch = collate([(3, a), (4, a)])
    assert indices.tolist() == [3, 4] and batch.shape == (2, 3, 32, 32)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(batch[0], torch.from_numpy(a).permute(2, 0, 1))
    pre = Preprocess(mean=MEAN, std=STD, input_size=(32, 32))
    assert pre(batch).is_contiguous(memory_format=torch.channels_last)
    _, mixed = collate([(0, a), (1, b)])
    forward = Forward(
        wrap_module(torch.nn.Flatten(), mean=MEAN, std=STD, label_space=IN9, input_size=32), "top1-mapped"
    )
    out = forward.pixel_values(mixed)  # the 48x40 image is resized to the model's 32x32
    assert out.shape == (2, 3, 32, 32)
    assert torch.allclose(out[0], pre(batch)[0])


def test_threaded_decoding_gives_the_pixels_datasets_decodes(synthetic_export):
    from evaluator.data import open_data
    from evaluator.runtime.decode import DecodedImages

    dataset = open_data(str(synthetic_export)).variant("mixed_rand")
    rows = list(range(len(dataset)))
    serial = DecodedImages(dataset).__getitems__(rows)
    threaded = DecodedImages(dataset, threads=2)
    try:
        decoded = threaded.__getitems__(rows)
    finally:
        threaded.close()
    assert [i for i, _ in decoded] == rows
    for (_, a), (_, b), row in zip(serial, decoded, dataset, strict=True):
        reference = np.asarray(row["image"].convert("RGB"))
        assert a.dtype == np.uint8 and np.array_equal(a, reference) and np.array_equal(b, reference)


def test_cpu_runs_decode_in_the_main_process_and_record_the_allocator_when_tuning_is_asked(
    tiny_models, synthetic_export, tmp_path
):
    from evaluator.runtime.accelerator import default_num_workers

    assert default_num_workers("cpu") == 0  # worker processes would preempt the model's threads
    assert default_num_workers("cuda") == max(0, min(4, (os.cpu_count() or 1) - 1))
    results = evaluate(
        str(tiny_models["in9"]),
        str(synthetic_export),
        "original",
        use_cache=False,
        cache_dir=tmp_path,
        progress=False,
        tune_cpu=True,
    )
    tuned = "glibc mmap_threshold=32MiB trim_threshold=2GiB arena_max=1"
    assert results.environment["cpu_allocator"] == tuned


@pytest.mark.slow
def test_allocator_tuning_can_be_turned_off():
    code = (
        "from evaluator.runtime.cpu import tune_cpu_allocator, allocator_state;"
        "print(tune_cpu_allocator('cuda:0'), '|', allocator_state(), '|', tune_cpu_allocator(), '|', "
        "allocator_state())"
    )
    env = {**os.environ, "IN9_MALLOC_TUNING": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    # A GPU run leaves the host allocator alone; a CPU run honours the switch.
    assert out.stdout.strip() == (
        "default | default | default (IN9_MALLOC_TUNING=0) | default (IN9_MALLOC_TUNING=0)"
    )


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads Linux's /proc/self/maps")
def test_a_scored_variant_is_unmapped_before_the_next(tiny_models, synthetic_export, tmp_path, monkeypatch):
    # Resident memory stays that of one variant only if nothing keeps a scored variant's memory map: not
    # accelerate's list of prepared loaders, not a zero-copy column in the predictions table.
    import gc

    import evaluator.predict as predict

    data = open_data(str(synthetic_export), cache_dir=tmp_path)
    variants = ["original", "only_fg", "mixed_rand"]
    files = {v: data.variant(v).cache_files[0]["filename"] for v in variants}
    for v in variants:
        data.release(v)
    mapped_while_scoring = []
    real = predict._unit_predictions

    def spy(forward, unit, *args, **kwargs):
        gc.collect()
        maps = open("/proc/self/maps").read()
        mapped_while_scoring.append([v for v in variants if v != unit.variant and files[v] in maps])
        return real(forward, unit, *args, **kwargs)

    monkeypatch.setattr(predict, "_unit_predictions", spy)
    results = evaluate(
        str(tiny_models["in9"]), data, variants, cache_dir=tmp_path, use_cache=False, progress=False
    )
    assert results.predictions.num_rows == 3 * 36
    assert mapped_while_scoring == [[], [], []]


@pytest.mark.slow
def test_evaluate_leaves_the_callers_process_as_it_was(tiny_models, synthetic_export, tmp_path):
    # A user scoring inside a training job keeps their allocator, their heap and their accelerate state.
    code = f"""
import gc
from accelerate import Accelerator
from accelerate.state import AcceleratorState
import evaluator.predict as predict
from evaluator.api import evaluate
from evaluator.runtime.cpu import allocator_state

mine = Accelerator(cpu=True)
state_before = dict(AcceleratorState._shared_state)
frozen_while_scoring = []
real = predict._unit_predictions
def spy(*args, **kwargs):
    frozen_while_scoring.append(gc.get_freeze_count())
    return real(*args, **kwargs)
predict._unit_predictions = spy
evaluate({str(tiny_models["in9"])!r}, {str(synthetic_export)!r}, "original", use_cache=False, progress=False,
         cache_dir={str(tmp_path)!r})
same_state = all(AcceleratorState._shared_state.get(k) is v for k, v in state_before.items())
print(allocator_state(), frozen_while_scoring, same_state)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "default [0] True"


@pytest.mark.slow
def test_another_precision_than_the_callers_accelerate_state_is_refused_not_reset(
    tiny_models, synthetic_export
):
    code = f"""
from accelerate import Accelerator
from evaluator.api import evaluate
Accelerator(cpu=True, mixed_precision="bf16")
try:
    evaluate({str(tiny_models["in9"])!r}, {str(synthetic_export)!r}, "original", precision="no",
             progress=False)
except ValueError as err:
    print(err)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert (
        "precision='no': accelerate is already set up in this process with mixed precision 'bf16'"
        in out.stdout
    )
