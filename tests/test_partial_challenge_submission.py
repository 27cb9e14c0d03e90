"""A user who exported to ./in9 and scores a few variants plus the challenge gets a valid submission."""

import json

from evaluator.cli.eval import main as eval_main
from evaluator.cli.leaderboard import main as board_main


def test_local_in9_folder_and_partial_variants_with_challenge_validate(
    tiny_models, synthetic_export, tmp_path, monkeypatch, capsys
):
    # `--data in9` names the local export folder here, not the official release download.
    monkeypatch.chdir(synthetic_export.parent)
    assert synthetic_export.name == "in9"
    out = tmp_path / "res"
    args = ["--model", str(tiny_models["in9"]), "--data", "in9"]
    args += ["--variants", "original,mixed_same,mixed_rand", "--challenge", "--output-dir", str(out)]
    args += ["--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert eval_main(args) == 0
    doc = json.loads((out / "results.json").read_text())
    # The challenge's pool and foregrounds are recorded as data even though they were not scored.
    assert list(doc["data"]["variants"]) == ["original", "mixed_same", "mixed_rand", "only_bg_t", "fg_mask"]
    assert set(doc["metrics"]["accuracy"]) == {"original", "mixed_same", "mixed_rand"}
    capsys.readouterr()
    code = board_main(["validate", str(out), "--data", str(synthetic_export), "--allow-unpinned"])
    assert code == 0, capsys.readouterr()
