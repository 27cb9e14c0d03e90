"""``in9-leaderboard table`` and ``in9-leaderboard plots``: every number of the table is its results.json's,
the figures keep data editions (and the published numbers) apart."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evaluator.cli.leaderboard import main
from evaluator.leaderboard import plots, table
from in9_builder.classes import IMAGE_VARIANTS

SYNTHETIC = {"source": "synthetic", "edition": "seeded", "seed": 0}
RELEASE = {"source": "release", "edition": "official", "seed": None}


def make_doc(
    model: str,
    accuracy: dict[str, float],
    *,
    data: dict = SYNTHETIC,
    gap_ci: tuple[float, float] | None = None,
    challenge: dict | None = None,
    seeds: dict | None = None,
    revision: str | None = "0123456789abcdef0123456789abcdef01234567",
    model_extra: dict | None = None,
) -> dict:
    """A results.json document with known numbers (the fields the table reads; nothing validates it)."""
    metrics: dict = {"accuracy": {v: {"value": a, "ci95": [a - 0.01, a + 0.01]} for v, a in accuracy.items()}}
    if "mixed_same" in accuracy and "mixed_rand" in accuracy:
        gap = accuracy["mixed_same"] - accuracy["mixed_rand"]
        metrics["bg_gap"] = {"value": gap, "ci95": list(gap_ci or (gap - 0.02, gap + 0.03)), "n_pairs": 90}
    reliance = {}
    if "original" in accuracy and "only_fg" in accuracy:
        reliance["original_minus_only_fg"] = accuracy["original"] - accuracy["only_fg"]
    if "only_bg_t" in accuracy:
        reliance["only_bg_t"] = accuracy["only_bg_t"]
    if reliance:
        metrics["bg_reliance"] = reliance
    if challenge is not None:
        metrics["challenge"] = challenge
    if seeds is not None:
        metrics["seeds"] = seeds
    return {
        "schema": "in9-results/1",
        "model": {
            "id": model,
            "revision": revision,
            "num_labels": 9,
            "label_space": "in9",
            "num_params": 123457,
            **(model_extra or {}),
        },
        "protocol": {"label_mode": "top1-mapped", "preprocess": "paper", "precision": "no", "batch_size": 8},
        "data": {**data, "variants": {v: {"fingerprint": "sha256:0", "count": 90} for v in accuracy}},
        "metrics": metrics,
        "environment": {},
        "created_at": "2026-01-01T00:00:00+00:00",
    }


def seeds_block(values: dict[int, dict[str, float]]) -> dict:
    """A ``metrics.seeds`` block: per-seed mixed accuracies and bg_gap, summary mean and sample std."""
    import statistics

    names = ("mixed_same", "mixed_rand", "mixed_next", "bg_gap")
    per_seed = {
        str(s): {"accuracy": {k: v for k, v in d.items() if k != "bg_gap"}, "bg_gap": d["bg_gap"]}
        for s, d in values.items()
    }
    summary = {}
    for name in names:
        xs = [d[name] for d in values.values() if name in d]
        if xs:
            summary[name] = {
                "mean": statistics.fmean(xs),
                "std": statistics.stdev(xs) if len(xs) > 1 else None,
            }
    return {"seeds": sorted(values), "per_seed": per_seed, "summary": summary}


ACC_A = {
    "original": 0.9133333333333333,
    "only_bg_b": 0.2,
    "only_bg_t": 0.3111111111111111,
    "no_fg": 0.45555555555555555,
    "only_fg": 0.8,
    "mixed_same": 0.7888888888888889,
    "mixed_rand": 0.6222222222222222,
    "mixed_next": 0.5444444444444444,
}
ACC_B = {"original": 0.95, "mixed_same": 0.85, "mixed_rand": 0.8, "only_fg": 0.7, "only_bg_t": 0.1}
ACC_C = {"original": 0.7, "mixed_same": 0.61, "mixed_rand": 0.45}
CHALLENGE_A = {
    "challenge_accuracy": 0.16666666666666666,
    "vulnerable_fraction": 0.8333333333333334,
    "bg_class_fooling_rate": 0.4444444444444444,
    "num_foregrounds": 90,
}
SEEDS_A = seeds_block(
    {
        0: {"mixed_same": 0.79, "mixed_rand": 0.62, "mixed_next": 0.54, "bg_gap": 0.17},
        1: {"mixed_same": 0.77, "mixed_rand": 0.6, "mixed_next": 0.57, "bg_gap": 0.17},
        2: {"mixed_same": 0.8, "mixed_rand": 0.66, "mixed_next": 0.5, "bg_gap": 0.14},
    }
)


def write_doc(folder: Path, doc: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.fixture
def results(tmp_path) -> Path:
    """Three constructed results on the synthetic edition: all variants + challenge + seeds, five variants
    (a timm-style record with an input size), the BG-gap variants only."""
    root = tmp_path / "results"
    timm = {"preprocessing": {"path": "tensor", "pretrained_cfg": {"input_size": [256, 192]}}}
    write_doc(root / "a", make_doc("org/model-a", ACC_A, challenge=CHALLENGE_A, seeds=SEEDS_A))
    write_doc(root / "b", make_doc("org/model-b", ACC_B, model_extra=timm))
    write_doc(root / "c" / "nested", make_doc("local-c", ACC_C, revision=None))
    return root


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _stored(doc: dict) -> dict[str, object]:
    """The value each CSV column must hold, read from the document by hand (not through table.py)."""
    m = doc["metrics"]
    out: dict[str, object] = {v: m["accuracy"].get(v, {}).get("value") for v in IMAGE_VARIANTS}
    out["params"] = doc["model"]["num_params"]
    if "bg_gap" in m:
        out |= {
            "bg_gap": m["bg_gap"]["value"],
            "bg_gap_ci95_low": m["bg_gap"]["ci95"][0],
            "bg_gap_ci95_high": m["bg_gap"]["ci95"][1],
        }
    out["original_minus_only_fg"] = m.get("bg_reliance", {}).get("original_minus_only_fg")
    out["challenge_accuracy"] = m.get("challenge", {}).get("challenge_accuracy")
    out["bg_class_fooling_rate"] = m.get("challenge", {}).get("bg_class_fooling_rate")
    for name, stats in m.get("seeds", {}).get("summary", {}).items():
        out[f"{name}_seed_mean"], out[f"{name}_seed_std"] = stats["mean"], stats["std"]
    return out


def _check_csv_equals_documents(rows: list[dict[str, str]], root: Path) -> int:
    """Every numeric cell equals its results.json value exactly; returns how many numbers were compared."""
    compared = 0
    for row in rows:
        doc = json.loads((root / row["path"]).read_text())
        stored = _stored(doc)
        for column in table.NUMBER_COLUMNS:
            expected = stored.get(column)
            if expected is None:
                assert row[column] == "", (row["path"], column)
                continue
            parsed = int(row[column]) if isinstance(expected, int) else float(row[column])
            assert parsed == expected and type(parsed) is type(expected), (row["path"], column)
            compared += 1
    return compared


def test_csv_holds_every_stored_number_exactly(capsys, results, tmp_path):
    out = tmp_path / "table.csv"
    assert main(["table", str(results), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"3 row(s): {out}"
    rows = _csv(out)
    assert [r["path"] for r in rows] == ["a/results.json", "b/results.json", "c/nested/results.json"]
    assert list(rows[0]) == list(table.COLUMNS)
    assert _check_csv_equals_documents(rows, results) >= 8 + 3 + 3 + 8 + 4
    a, b, c = rows
    assert a["model"] == "org/model-a" and a["edition"] == "synthetic seeded seed=0" and a["seeds"] == "0 1 2"
    assert a["original"] == repr(ACC_A["original"])  # full precision, not rounded
    assert b["input_size"] == "256x192" and a["input_size"] == ""
    assert c["revision"] == "" and c["challenge_accuracy"] == "" and c["mixed_rand_seed_std"] == ""
    assert (a["preprocess"], a["label_mode"], a["precision"]) == ("paper", "top1-mapped", "no")


def test_csv_of_real_in9_eval_results(results_copy_of_real_submissions, tmp_path):
    root = results_copy_of_real_submissions
    out = tmp_path / "real.csv"
    assert main(["table", str(root), "--out", str(out)]) == 0
    rows = _csv(out)
    assert len(rows) == 2
    assert _check_csv_equals_documents(rows, root) >= 2 * (8 + 3 + 2)
    for row in rows:
        doc = json.loads((root / row["path"]).read_text())
        assert row["model"] == doc["model"]["id"] and row["edition"].startswith("synthetic seeded")


@pytest.fixture
def results_copy_of_real_submissions(tmp_path, eval_submissions) -> Path:
    root = tmp_path / "real"
    for key, folder in eval_submissions.folders.items():
        write_doc(root / key, json.loads((folder / "results.json").read_text()))
    return root


def test_markdown_shows_the_numbers_as_percentages(results, tmp_path):
    out = tmp_path / "table.md"
    assert main(["table", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    lines = [line for line in text.splitlines() if line.startswith("| org/model-a")]
    assert len(lines) == 1
    cells = [c.strip() for c in lines[0].strip("|").split("|")]
    header = [c.strip() for c in text.splitlines()[2].strip("|").split("|")]
    row = dict(zip(header, cells, strict=True))
    assert row["Original"] == "91.3" and row["Only-BG-T"] == "31.1" and row["Mixed-Next"] == "54.4"
    assert row["BG-gap [95 % CI]"] == "16.7 [14.7, 19.7]"
    assert row["Orig − Only-FG"] == "11.3" and row["Challenge"] == "16.7" and row["Fooling rate"] == "44.4"
    assert row["Mixed-Rand (seeds)"] == "62.7 ± 3.1" and row["BG-gap (seeds)"] == "16.0 ± 1.7"
    assert row["Params"] == "123.5k" and row["Revision"] == "0123456789ab"
    assert "Accuracies and rates in %" in text


def test_markdown_leaves_out_columns_empty_in_every_row(tmp_path):
    root = tmp_path / "r"
    write_doc(root / "c", make_doc("m", ACC_C))
    out = tmp_path / "t.md"
    assert main(["table", str(root), "--out", str(out)]) == 0
    header = out.read_text().splitlines()[2]
    assert "Seeds" not in header and "Challenge" not in header and "Mixed-Same" in header


@pytest.mark.parametrize(
    "column, expected",
    [
        ("original", ["b", "a", "c"]),  # descending
        ("bg_gap", ["a", "c", "b"]),
        ("challenge_accuracy", ["a", "b", "c"]),  # missing values last, in path order
        ("model", ["c", "a", "b"]),  # text ascending
        ("mixed_rand_seed_mean", ["a", "b", "c"]),
    ],
)
def test_sort(results, tmp_path, column, expected):
    out = tmp_path / "t.csv"
    assert main(["table", str(results), "--out", str(out), "--sort", column]) == 0
    assert [r["path"].split("/")[0] for r in _csv(out)] == expected


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_bad_out_suffix_is_exit_2_and_writes_nothing(capsys, results, tmp_path):
    out = tmp_path / "table.xlsx"
    assert main(["table", str(results), "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert f"--out {out}" in line and ".csv or .md" in line
    assert list(tmp_path.iterdir()) == [results]


def test_unknown_sort_column_lists_the_columns(capsys, results, tmp_path):
    out = tmp_path / "t.csv"
    assert main(["table", str(results), "--out", str(out), "--sort", "accuracy"]) == 2
    line = _one_error_line(capsys)
    assert "--sort accuracy" in line and ", ".join(table.COLUMNS) in line
    assert not out.exists()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{not json", "not valid JSON"),
        ('{"schema": "other/1"}', "expected 'in9-results/1'"),
        ("[1]", "schema"),
    ],
)
def test_broken_results_json_is_exit_2_naming_the_file(capsys, results, tmp_path, text, expected):
    bad = results / "zz" / "results.json"
    bad.parent.mkdir()
    bad.write_text(text)
    for out in (tmp_path / "t.csv", tmp_path / "figs"):
        command = "table" if out.suffix else "plots"
        assert main([command, str(results), "--out", str(out)]) == 2
        line = _one_error_line(capsys)
        assert str(bad) in line and expected in line
        assert not out.exists()


def test_a_folder_without_results_is_exit_2(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert main(["table", str(tmp_path / "empty"), "--out", str(tmp_path / "t.csv")]) == 2
    assert "no results.json" in _one_error_line(capsys)
    assert main(["table", str(tmp_path / "missing"), "--out", str(tmp_path / "t.csv")]) == 2
    assert "not a folder" in _one_error_line(capsys)


def test_sort_puts_non_numbers_last():
    rows = [{"path": "x", "original": "n/a"}, {"path": "y", "original": 0.5}, {"path": "z", "original": None}]
    assert [r["path"] for r in table.sort_rows(rows, "original")] == ["y", "x", "z"]


# ----------------------------------------------------------------------------------------------------
# Figures


@pytest.fixture
def two_editions(results) -> Path:
    """The synthetic results plus two on the official release edition (one with seeds)."""
    write_doc(
        results / "release" / "r1", make_doc("org/release-model", ACC_A, data=RELEASE, challenge=CHALLENGE_A)
    )
    write_doc(results / "release" / "r2", make_doc("org/seeded-release", ACC_B, data=RELEASE, seeds=SEEDS_A))
    return results


def test_plots_one_file_per_figure_and_edition(capsys, two_editions, tmp_path):
    out = tmp_path / "figs"
    assert main(["plots", str(two_editions), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    names = sorted(p.name for p in out.iterdir())
    expected = sorted(
        f"{figure}-{slug}.{fmt}"
        for figure in plots.FIGURES
        for slug in ("release-official", "synthetic-seeded-seed-0")
        for fmt in ("png", "pdf")
    )
    assert names == expected
    assert sorted(Path(p).name for p in printed) == expected
    for path in out.glob("*.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for path in out.glob("*.pdf"):
        assert path.read_bytes()[:5] == b"%PDF-"


def test_reported_rows_only_in_the_official_edition(two_editions, tmp_path):
    report = plots.plot_results(two_editions, tmp_path / "figs")
    assert report.notes == []
    published = {s.label for s in plots.reported_series()}
    by_edition: dict[str, list[dict]] = {}
    for figure in report.figures:
        by_edition.setdefault(figure["edition"], []).append(figure)
        assert all(p.name.endswith(plots.edition_slug(figure["edition"]) + p.suffix) for p in figure["files"])
    assert set(by_edition) == {"release official", "synthetic seeded seed=0"}
    for figure in by_edition["synthetic seeded seed=0"]:
        assert figure["reported"] == []  # a reproduced synthetic row never shares a figure with reported rows
        assert set(figure["models"]) <= {"model-a", "model-b", "local-c"}
    for figure in by_edition["release official"]:
        assert figure["reported"] and set(figure["reported"]) <= published
        assert set(figure["models"]) <= {"release-model", "seeded-release"}
    challenge = {f["edition"]: f for f in report.figures if f["figure"] == "challenge_accuracy"}
    assert challenge["synthetic seeded seed=0"]["models"] == ["model-a"]  # only models that ran it
    assert challenge["release official"]["models"] == ["release-model"]
    assert all(f["seeds"] for f in report.figures if f["figure"] != "challenge_accuracy")


def test_no_challenge_anywhere_skips_that_figure_with_a_note(capsys, tmp_path):
    root = tmp_path / "r"
    write_doc(root / "c", make_doc("m", ACC_C))
    assert main(["plots", str(root), "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    assert "note: challenge_accuracy-synthetic-seeded-seed-0: not drawn" in out
    assert not list((tmp_path / "figs").glob("challenge_accuracy-*"))
    assert len(list((tmp_path / "figs").iterdir())) == 4


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda d: d["protocol"].update(preprocess="processor"),
            ["paper, top1-mapped, no", "processor, top1-mapped, no"],
        ),
        (lambda d: d["model"].update(revision="fedcba9876543210"), ["01234567", "fedcba98"]),
        (lambda d: None, ["a/results.json", "b/results.json"]),
    ],
)
def test_one_model_twice_gets_two_labels(tmp_path, edit, expected):
    root = tmp_path / "r"
    write_doc(root / "a", make_doc("org/m", ACC_C))
    doc = make_doc("org/m", ACC_B)
    edit(doc)
    write_doc(root / "b", doc)
    figure = plots.plot_results(root, tmp_path / "figs").figures[0]
    assert figure["models"] == [f"m [{suffix}]" for suffix in expected]


def test_a_model_published_twice_is_labelled_by_its_source():
    labels = [s.label for s in plots.reported_series()]
    assert len(set(labels)) == len(labels)
    assert "ResNet-50 [madry-readme]" in labels and "ResNet-50 [paper-table2]" in labels
    assert "VGG16-BN" in labels


def test_plots_out_must_be_a_folder(capsys, results, tmp_path):
    out = tmp_path / "figs.png"
    out.write_text("")
    assert main(["plots", str(results), "--out", str(out)]) == 2
    assert f"--out {out}" in _one_error_line(capsys)


def test_the_same_results_give_the_same_files(results, tmp_path):
    first = plots.plot_results(results, tmp_path / "one").figures
    second = plots.plot_results(results, tmp_path / "two").figures
    for a, b in zip(first, second, strict=True):
        assert [f.read_bytes() for f in a["files"]] == [f.read_bytes() for f in b["files"]]


def test_plots_leave_the_global_matplotlib_state_alone(two_editions, tmp_path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    had_pyplot = "matplotlib.pyplot" in sys.modules
    plots.plot_results(two_editions, tmp_path / "figs")
    assert dict(matplotlib.rcParams) == before
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot


def test_missing_matplotlib_says_how_to_install_it(capsys, monkeypatch, results, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib...` raises ImportError
    assert main(["plots", str(results), "--out", str(tmp_path / "figs")]) == 2
    line = _one_error_line(capsys)
    assert "pip install 'in9-bench[plots]'" in line
    assert not (tmp_path / "figs").exists()


def test_importing_the_cli_loads_neither_matplotlib_nor_torch():
    code = (
        "import sys; import evaluator.cli.leaderboard; "
        "print(any(m.split('.')[0] in ('matplotlib', 'torch') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_table_and_plots_cli_in_a_subprocess(results, tmp_path):
    exe = Path(sys.executable).with_name("in9-leaderboard")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "evaluator.cli.leaderboard"]
    done = subprocess.run(
        [*command, "table", str(results), "--out", str(tmp_path / "t.md")], capture_output=True
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [*command, "table", str(results), "--out", str(tmp_path / "t.txt")], capture_output=True
    )
    assert done.returncode == 2 and b"--out" in done.stderr
    shutil.rmtree(tmp_path / "figs", ignore_errors=True)
    done = subprocess.run(
        [*command, "plots", str(results), "--out", str(tmp_path / "figs")], capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.decode().splitlines()) == len(list((tmp_path / "figs").iterdir())) == 6


def test_results_on_different_data_of_one_edition_label_never_share_a_panel():
    def data(prints, limit=None, source="synthetic", edition="seeded", seed=0):
        variants = {v: {"fingerprint": f"sha256:{fp}", "count": 36} for v, fp in prints.items()}
        return {"source": source, "edition": edition, "seed": seed, "limit": limit, "variants": variants}

    small, large = {"original": "aaaa1111", "mixed_rand": "aaaa2222"}, {"original": "bbbb1111"}
    official = data({"original": "cafe0000"}, source="release", edition="official", seed=None)
    only_mixed = data({"mixed_rand": "aaaa2222"})  # shares a fingerprint with the small export's result
    blocks = [data(small), data(large), only_mixed, data(small, limit=2), official]
    assert plots.data_labels(blocks) == [
        "synthetic seeded seed=0, data aaaa1111",  # two exports (sizes) under one label: told apart
        "synthetic seeded seed=0, data bbbb1111",
        "synthetic seeded seed=0, data aaaa1111",  # the same data, named by the group's Original
        "synthetic seeded seed=0, first 2 per class",  # a smoke run is not the full data
        plots.OFFICIAL_EDITION,  # the only label the published rows are drawn with
    ]


def test_markdown_names_a_local_model_by_its_folder_and_the_csv_keeps_the_path(tmp_path):
    local = make_doc("/tmp/somewhere/models/tiny-resnet-original", {"original": 0.5}, revision=None)
    local["model"]["source"] = "local"
    write_doc(tmp_path / "in" / "a", local)
    write_doc(tmp_path / "in" / "b", make_doc("org/resnet-50", {"original": 0.75}))
    assert main(["table", str(tmp_path / "in"), "--out", str(tmp_path / "t.md")]) == 0
    assert main(["table", str(tmp_path / "in"), "--out", str(tmp_path / "t.csv")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "| tiny-resnet-original |" in text and "/tmp/somewhere" not in text and "| org/resnet-50 |" in text
    assert [r["model"] for r in _csv(tmp_path / "t.csv")] == [
        "/tmp/somewhere/models/tiny-resnet-original",
        "org/resnet-50",
    ]
