"""in9-eval: a thin shell over evaluate(); user errors are one line on stderr and exit status 2."""

import json
import subprocess
import sys

import pytest

from evaluator.cli.eval import main


def test_cli_run_writes_outputs_and_prints_the_table(tiny_models, synthetic_export, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "--model",
            str(tiny_models["in9"]),
            "--data",
            str(synthetic_export),
            "--variants",
            "original,mixed_same,mixed_rand",
            "--limit",
            "2",
            "--batch-size",
            "7",
            "--output-dir",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
            "--num-workers",
            "0",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "mixed_same" in printed and "BG-Gap" in printed and f"wrote {out / 'results.json'}" in printed
    doc = json.loads((out / "results.json").read_text())
    assert doc["protocol"]["limit"] == 2 and doc["protocol"]["batch_size"] == 7
    assert [v["count"] for v in doc["data"]["variants"].values()] == [18, 18, 18]
    assert (out / "summary.md").is_file() and (out / "predictions.parquet").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/no/such/model"], "error: --model '/no/such/model': not an existing local folder"),
        (["--variants", "original,bogus"], "error: --variants: unknown variant 'bogus'"),
        (["--batch-size", "0"], "error: --batch-size 0: use 1 or more"),
        (["--limit", "0"], "error: --limit 0: use a positive number"),
        (["--label-map", "/no/map.json"], "error: --label-map /no/map.json: file not found"),
        (["--challenge-analysis"], "error: --challenge-analysis / --analysis-sample N need --challenge"),
    ],
)
def test_user_errors_exit_2_with_one_line(tiny_models, synthetic_export, tmp_path, capsys, args, message):
    model = [] if "--model" in args else ["--model", str(tiny_models["in9"])]  # --model repeats: a sweep
    base = [
        *model,
        "--data",
        str(synthetic_export),
        "--output-dir",
        str(tmp_path),
        "--cache-dir",
        str(tmp_path / "c"),
        "--no-progress",
    ]
    code = main(base + args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(message)
    assert not (tmp_path / "results.json").exists()


def test_unmappable_model_error_shows_the_label_map_format(tmp_path, synthetic_export, capsys):
    from evaluator.demo.train_tiny import save_random_tiny_resnet

    folder = save_random_tiny_resnet(tmp_path / "m", [f"LABEL_{i}" for i in range(3)])
    assert (
        main(["--model", str(folder), "--data", str(synthetic_export), "--output-dir", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err
    assert "found 3 labels ('LABEL_0', 'LABEL_1', 'LABEL_2')" in err and "--label-map FILE" in err


@pytest.mark.slow
def test_help_loads_no_torch():
    code = (
        "import sys\nfrom evaluator.cli.eval import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--batch-size" in result.stdout and result.stdout.strip().endswith("False")


@pytest.mark.slow
def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "evaluator.cli", "--help"], capture_output=True, text=True, check=True
    )
    for flag in (
        "--revision",
        "--data",
        "--variants",
        "--batch-size",
        "--precision",
        "--label-mode",
        "--preprocess",
        "--label-map",
        "--limit",
        "--output-dir",
        "--trust-remote-code",
        "--challenge",
        "--challenge-analysis",
        "--analysis-sample",
    ):
        assert flag in result.stdout


def test_bf16_processor_protocol_and_superclass_sum(tiny_models, synthetic_export, tmp_path):
    out = tmp_path / "out"
    code = main(
        [
            "--model",
            str(tiny_models["in1k"]),
            "--data",
            str(synthetic_export),
            "--variants",
            "original",
            "--limit",
            "1",
            "--precision",
            "bf16",
            "--preprocess",
            "processor",
            "--label-mode",
            "superclass-sum",
            "--output-dir",
            str(out),
            "--cache-dir",
            str(tmp_path / "c"),
            "--no-progress",
            "--num-workers",
            "0",
        ]
    )
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["protocol"] == {
        "label_mode": "superclass-sum",
        "preprocess": "processor",
        "precision": "bf16",
        "batch_size": 32,
        "limit": 1,
    }
    import pyarrow.parquet as pq

    table = pq.read_table(out / "predictions.parquet")
    assert table.num_rows == 9 and min(table.column("prediction").to_pylist()) >= 0  # superclass-sum never -1
