"""Two CPU processes (torchrun + Accelerator(cpu=True) = MULTI_CPU) give the same predictions as one."""

import json
import os
import socket
import subprocess
import sys

import pyarrow.parquet as pq
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tiny_models, synthetic_export, tmp_path):
    # 3 per class = 27 rows per variant: an odd count, so the sharded loader pads one process and
    # gather_for_metrics must drop the duplicate; batch size 4 leaves ragged last batches too.
    args = [
        "--model",
        str(tiny_models["in1k"]),
        "--data",
        str(synthetic_export),
        "--variants",
        "original,mixed_same,mixed_rand",
        "--limit",
        "3",
        "--batch-size",
        "4",
        "--no-cache",
        "--no-progress",
        "--num-workers",
        "0",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "1",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            "-m",
            "evaluator.cli",
            *args,
            "--output-dir",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run(
        [sys.executable, "-m", "evaluator.cli", *args, "--output-dir", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr[-3000:]

    doc_two = json.loads((tmp_path / "two" / "results.json").read_text())
    doc_one = json.loads((tmp_path / "one" / "results.json").read_text())
    assert doc_two["environment"]["num_processes"] == 2
    assert doc_two["environment"]["distributed_type"].endswith("MULTI_CPU")
    assert doc_one["environment"]["num_processes"] == 1
    assert doc_two["metrics"] == doc_one["metrics"]
    assert doc_two["data"] == doc_one["data"]
    preds_two = pq.read_table(tmp_path / "two" / "predictions.parquet")
    preds_one = pq.read_table(tmp_path / "one" / "predictions.parquet")
    assert preds_two.num_rows == preds_one.num_rows == 3 * 27  # no sample lost or doubled
    for column in ("variant", "image_id", "label", "prediction", "raw_top1"):
        assert preds_two.column(column).equals(preds_one.column(column)), column
    # The table is printed once, by the main process.
    assert two.stdout.count("wrote ") == 1
