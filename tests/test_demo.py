"""in9-demo end to end on a small configuration: the paper's finding in miniature, through the user's CLIs."""

import json

import pytest

from evaluator.cli.demo import main
from evaluator.demo.run import format_table

pytestmark = pytest.mark.slow  # trains two models and runs the CLIs in subprocesses

SMALL = ["--size", "48", "--per-class", "8", "--train-per-class", "60", "--epochs", "5"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    assert main(["--out", str(out), *SMALL]) == 0
    return out


def _results(out, name):
    return json.loads((out / "results" / f"tiny-resnet-{name}" / "results.json").read_text())


def test_original_model_leans_on_backgrounds_and_mixed_rand_model_less(demo_run):
    original, mixed_rand = _results(demo_run, "original"), _results(demo_run, "mixed-rand")
    gap = {name: r["metrics"]["bg_gap"]["value"] for name, r in (("o", original), ("m", mixed_rand))}
    challenge = {
        name: r["metrics"]["challenge"]["challenge_accuracy"]
        for name, r in (("o", original), ("m", mixed_rand))
    }
    assert gap["o"] >= gap["m"] + 0.10
    assert challenge["o"] < challenge["m"]
    assert original["metrics"]["accuracy"]["only_bg_t"]["value"] > 2 / 9  # chance is 1/9
    # the challenge ran on every test foreground
    assert original["metrics"]["challenge"]["num_foregrounds"] == 9 * 8


def test_outputs_a_user_opens(demo_run):
    assert (demo_run / "site" / "index.html").is_file()
    assert (demo_run / "site" / "leaderboard.md").is_file()
    for name in ("original", "mixed-rand"):
        model = demo_run / "models" / f"tiny-resnet-{name}"
        files = {p.name for p in model.iterdir()}
        assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= files
        assert (demo_run / "results" / f"tiny-resnet-{name}" / "predictions.parquet").is_file()


def test_refuses_to_replace_a_folder_that_is_not_its_own_output(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep")
    assert main(["--out", str(tmp_path), *SMALL]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out ") and "--overwrite" in err
    assert (tmp_path / "mine.txt").read_text() == "keep"  # untouched
    assert not (tmp_path / ".in9-demo").exists()


def test_output_is_marked_as_the_demos_own(demo_run):
    # a rerun of the README command replaces a folder holding this marker without --overwrite
    assert (demo_run / ".in9-demo").is_file()


def test_table_has_one_row_per_model_in_percent():
    metrics = {
        "accuracy": {v: {"value": 0.5} for v in ("original", "mixed_same", "mixed_rand", "only_bg_t")},
        "bg_gap": {"value": 0.125},
        "challenge": {"challenge_accuracy": 0.25},
    }
    table = format_table({"original": {"metrics": metrics}})
    row = ["original", "50.0%", "50.0%", "50.0%", "12.5%", "50.0%", "25.0%"]
    assert table.splitlines()[-1].split() == row
    assert table.splitlines()[0].split()[-6:] == [
        "Original",
        "Mixed-Same",
        "Mixed-Rand",
        "BG-gap",
        "Only-BG-T",
        "Challenge",
    ]
