"""The challenge on 2 real processes (torchrun + Accelerator(cpu=True)) gives the 1-process outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluator.challenge import state as challenge_state
from evaluator.challenge.run import run_challenge
from evaluator.forward import Forward
from tests.test_challenge import (
    ArraySource,
    Dies,
    Killed,
    PrototypeNet,
    brute_force,
    make_world,
    outcome_of,
    reference,
    wrap,
)

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
from pathlib import Path
from accelerate import Accelerator
from evaluator.challenge.run import run_challenge
from evaluator.cli.eval import close_process_group
from evaluator.forward import Forward
from tests.test_challenge import ArraySource, Dies, PrototypeNet, make_world, wrap

out, reorder, batch_size, sample = Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
accelerator = Accelerator(cpu=True)
world = make_world()
net = Dies(PrototypeNet(world["fg_colours"], world["bg_colours"]), 10**9)  # the killed run's module, alive
result = run_challenge(Forward(wrap(net), "top1-mapped", accelerator), ArraySource(world),
                       batch_size=batch_size,
                       state_dir=out / "state", reorder=reorder, analysis=sample > 0,
                       analysis_sample=sample or None, progress=False,
                       output_dir=out / f"analysis-{accelerator.process_index}")
(out / f"result-{accelerator.process_index}.json").write_text(json.dumps(
    {"rows": result.rows, "metrics": result.metrics, "analysis": result.analysis,
     "num_processes": accelerator.num_processes, "distributed_type": str(accelerator.distributed_type)}))
close_process_group()  # as in9-eval does: a gloo group alive at exit can abort a finished process
"""


def run_two_processes(tmp_path: Path, *args: str) -> list[dict]:
    script = tmp_path / "run_challenge_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tmp_path),
        *args,
    ]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[:6000]
    results = [json.loads((tmp_path / f"result-{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["num_processes"] for r in results] == [2, 2]
    assert results[0]["distributed_type"] == "DistributedType.MULTI_CPU"
    return results


def saved_outcomes(state: Path) -> list[int]:
    return [len((state / f"outcomes-{rank}.jsonl").read_text().splitlines()) for rank in (0, 1)]


@pytest.fixture(scope="module")
def world():
    return make_world()


@pytest.fixture(scope="module")
def net(world):
    return PrototypeNet(world["fg_colours"], world["bg_colours"])


@pytest.fixture(scope="module")
def one_process(world, net, tmp_path_factory):
    from accelerate import Accelerator

    return run_challenge(
        Forward(wrap(net), "top1-mapped", Accelerator(cpu=True)),
        ArraySource(world),
        batch_size=5,
        state_dir=tmp_path_factory.mktemp("one") / "state",
        reorder=False,
        progress=False,
    )


@pytest.mark.slow
def test_two_processes_give_the_one_process_outcome(one_process, tmp_path):
    results = run_two_processes(tmp_path, "0", "5", "0")
    for result in results:  # every process returns the whole, identical result
        assert [outcome_of(r) for r in result["rows"]] == [outcome_of(r) for r in one_process.rows]
        assert {k: v for k, v in result["metrics"].items() if k != "forward_passes"} == {
            k: v for k, v in one_process.metrics.items() if k != "forward_passes"
        }
    # Both processes searched: each saved its own share of the foregrounds.
    assert saved_outcomes(tmp_path / "state") == [14, 13]


@pytest.mark.slow
def test_resume_on_two_processes_with_reordering_and_sampled_analysis(
    world, net, one_process, tmp_path, monkeypatch
):
    from accelerate import Accelerator

    monkeypatch.setattr(challenge_state, "STATE_FLUSH_SECONDS", 0.0)
    with pytest.raises(Killed):  # a 1-process run killed part way leaves some outcomes behind
        run_challenge(
            Forward(wrap(Dies(net, 40)), "top1-mapped", Accelerator(cpu=True)),
            ArraySource(world),
            batch_size=7,
            state_dir=tmp_path / "state",
            progress=False,
        )
    saved = len((tmp_path / "state" / "outcomes-0.jsonl").read_text().splitlines())
    assert 0 < saved < len(world["fg_ids"])

    results = run_two_processes(tmp_path, "1", "7", "10")
    vulnerable, class_fooled, _ = reference(world, brute_force(world, net))
    for result in results:
        assert [r["vulnerable"] for r in result["rows"]] == vulnerable.tolist()
        assert [r["bg_class_fooled"] for r in result["rows"]] == class_fooled.tolist()
        assert result["metrics"]["challenge_accuracy"] == one_process.metrics["challenge_accuracy"]
    assert results[0]["analysis"] == results[1]["analysis"]
    assert results[0]["analysis"]["num_foregrounds"] == 10
    # Only the unfinished foregrounds were searched again, shared by the two processes.
    resumed = saved_outcomes(tmp_path / "state")
    assert resumed[0] - saved + resumed[1] == len(world["fg_ids"]) - saved
