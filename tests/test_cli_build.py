"""``in9-build``: the subcommands end to end, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from in9_builder.cli import build_parser, main


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_synthetic_then_export_release_from_the_fake_tarball(tmp_path, capsys):
    code, out, _ = _run(
        [
            "synthetic",
            "--out",
            str(tmp_path / "fake"),
            "--per-class",
            "2",
            "--size",
            "32",
            "--seed",
            "4",
            "--tarball",
        ],
        capsys,
    )
    tarball = tmp_path / "fake" / "backgrounds_challenge_data.tar.gz"
    assert code == 0 and tarball.is_file() and "wrote" in out
    code, out, err = _run(
        [
            "export",
            "--source",
            "release",
            "--data-dir",
            str(tarball),
            "--per-class",
            "2",
            "--variants",
            "original,mixed_same",
            "fg_mask",
            "--out",
            str(tmp_path / "in9"),
            "--num-proc",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capsys,
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "in9" / "in9_export.json").read_text())
    assert summary["edition"] == "official" and summary["seed"] is None
    assert list(summary["configs"]) == ["original", "mixed_same", "fg_mask"]
    assert "official edition" in out and "mixed_same" in out


def test_export_synthetic_seeded_with_source_flags(tmp_path, capsys):
    code, out, err = _run(
        [
            "export",
            "--source",
            "synthetic",
            "--seed",
            "2",
            "--per-class",
            "2",
            "--size",
            "32",
            "--train-per-class",
            "0",
            "--source-arg",
            "bg_correlation=0.5",
            "--variants",
            "mixed_rand",
            "--out",
            str(tmp_path / "in9"),
            "--num-proc",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capsys,
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "in9" / "in9_export.json").read_text())
    assert summary["seed"] == 2 and summary["source_params"]["bg_correlation"] == 0.5
    assert summary["configs"]["mixed_rand"]["num_rows"] == {"test": 18}
    code, out, _ = _run(["info", str(tmp_path / "in9")], capsys)
    assert code == 0 and "seed 2" in out and "test 18" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["export", "--source", "synthetic", "--variants", "mixed_random", "--out", "{tmp}/x"],
            "--variants: unknown variant 'mixed_random'",
        ),
        (
            ["export", "--source", "release", "--data-dir", "{tmp}/missing.tar.gz", "--out", "{tmp}/x"],
            "no such file or folder",
        ),
        (["export", "--source", "synthetic", "--data-dir", "{tmp}", "--out", "{tmp}/x"], "drop --data-dir"),
        (["export", "--source", "synthetic", "--out", "{tmp}"], "already exists; pass --overwrite"),
        (["export", "--source", "synthetic", "--source-arg", "oops", "--out", "{tmp}/x"], "KEY=VALUE"),
        (["synthetic", "--out", "{tmp}", "--per-class", "1"], "--per-class 1: the synthetic source needs"),
        (["export", "--source", "synthetic", "--num-proc", "0", "--out", "{tmp}/x"], "--num-proc 0: use 1"),
        (["info", "{tmp}"], "in9_export.json not found"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(argv, message, tmp_path, capsys):
    code, out, err = _run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert "Traceback" not in err and not (tmp_path / "x").exists()


def test_existing_fake_release_needs_overwrite(tmp_path, capsys):
    argv = ["synthetic", "--out", str(tmp_path), "--per-class", "2", "--size", "32"]
    assert _run(argv, capsys)[0] == 0
    code, _, err = _run(argv, capsys)
    assert code == 2 and "bg_challenge already exists; pass --overwrite" in err
    assert _run([*argv, "--overwrite"], capsys)[0] == 0


def test_parser_keeps_every_documented_flag():
    parser = build_parser()
    args = parser.parse_args(
        [
            "export",
            "--source",
            "release",
            "--data-dir",
            "d",
            "--seed",
            "3",
            "--variants",
            "original",
            "mixed_rand",
            "--out",
            "o",
            "--push-to-hub",
            "org/in9",
        ]
    )
    assert (args.source, args.data_dir, args.seed, args.out, args.push_to_hub) == (
        "release",
        "d",
        3,
        "o",
        "org/in9",
    )
    args = parser.parse_args(["synthetic", "--out", "o", "--per-class", "5", "--seed", "1", "--tarball"])
    assert (args.per_class, args.seed, args.tarball) == (5, 1, True)


@pytest.mark.slow
def test_console_script_entry_point(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from in9_builder.cli import main; sys.exit(main())",
            "info",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
