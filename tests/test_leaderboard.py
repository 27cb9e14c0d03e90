"""in9-leaderboard validate / build / register (spec §7): real result files pass, every tampering is rejected
with one line naming the file and the field, the page holds every row and keeps reported rows apart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evaluator import leaderboard
from evaluator.leaderboard_cli import main


def _validate(capsys, *paths, registry, extra=()) -> tuple[int, list[str], list[str]]:
    code = main(["validate", *map(str, paths), "--canonical", str(registry), *extra])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def _copy(folder: Path, tmp_path: Path, name: str = "sub") -> Path:
    return Path(shutil.copytree(folder, tmp_path / name))


def _edit_json(folder: Path, edit) -> Path:
    path = folder / "results.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    return path


def _edit_parquet(path: Path, edit) -> None:
    rows = pq.read_table(path).to_pylist()
    rows = edit(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)


def test_real_submissions_validate(capsys, eval_submissions):
    files = [f / "results.json" for f in eval_submissions.folders.values()]
    code, out, err = _validate(capsys, *files, registry=eval_submissions.registry)
    assert code == 0, err
    assert out == [f"ok: {f}" for f in files]
    assert err == []


def test_registry_holds_recomputed_fingerprints(eval_submissions):
    registry = json.loads(eval_submissions.registry.read_text())
    summary = json.loads((eval_submissions.export / "in9_export.json").read_text())
    (entry,) = registry["editions"]
    assert (entry["source"], entry["edition"], entry["seed"]) == ("synthetic", "seeded", 0)
    assert {n: c["fingerprint"] for n, c in entry["configs"].items()} == {
        n: c["fingerprint"] for n, c in summary["configs"].items()
    }
    assert all(c["count"] == 36 for c in entry["configs"].values())


def test_register_refuses_a_damaged_export(tmp_path, eval_submissions):
    export = Path(shutil.copytree(eval_submissions.export, tmp_path / "in9"))
    shard = sorted((export / "mixed_rand").glob("test-*.parquet"))[0]
    _edit_parquet(shard, lambda rows: rows[::-1])  # same rows, other order: another fingerprint
    with pytest.raises(
        leaderboard.In9Error,
        match=r"in9_export.json: configs.mixed_rand.fingerprint .* does not "
        r"match the parquet files",
    ):
        leaderboard.register_export(export, tmp_path / "registry.json")
    assert not (tmp_path / "registry.json").exists()


def _set(path: str, value):
    def edit(doc):
        *parents, leaf = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value

    return edit


_DELETE = object()

# (id, edit of results.json, expected "field: message" start on the one stderr line of reasons)
JSON_TAMPERING = [
    ("schema", _set("schema", "in9-results/0"), "schema: 'in9-results/0' is not 'in9-results/1'"),
    ("model-id", _set("model.id", _DELETE), "model.id: missing"),
    ("revision", _set("model.revision", None), "model.revision: missing; the weights must be pinned"),
    ("revision-not-sha", _set("model.revision", "main"), "model.revision: 'main' is not a commit sha"),
    (
        "fingerprint",
        _set("data.variants.mixed_rand.fingerprint", "sha256:" + "0" * 64),
        "data.variants.mixed_rand.fingerprint: sha256:000",
    ),
    (
        "edition",
        _set("data.seed", 1),
        "data: no canonical fingerprints registered for edition 'synthetic seeded seed=1'",
    ),
    ("limit", _set("protocol.limit", 2), "protocol.limit: 2: a submission must cover the full test set"),
    ("label-mode", _set("protocol.label_mode", "top5"), "protocol.label_mode: 'top5' is not one of"),
    (
        "accuracy",
        _set("metrics.accuracy.original.value", 0.99),
        "metrics.accuracy.original.value: claimed 0.99, recomputed from predictions.parquet: 1",
    ),
    (
        "accuracy-ci",
        _set("metrics.accuracy.mixed_rand.ci95", [0.1, 0.2]),
        "metrics.accuracy.mixed_rand.ci95: claimed",
    ),
    (
        "per-class",
        _set("metrics.accuracy.mixed_same.per_class.dog", 0.5),
        "metrics.accuracy.mixed_same.per_class.dog: claimed 0.5",
    ),
    (
        "bg-gap",
        _set("metrics.bg_gap.value", 0.0),
        "metrics.bg_gap.value: claimed 0, recomputed from predictions.parquet",
    ),
    ("bg-gap-ci", _set("metrics.bg_gap.ci95", [0.0, 0.01]), "metrics.bg_gap.ci95: claimed [0, 0.01]"),
    (
        "bg-gap-missing",
        _set("metrics.bg_gap", _DELETE),
        "metrics.bg_gap: missing; recomputed from predictions.parquet",
    ),
    (
        "challenge-count",
        _set("metrics.challenge.num_vulnerable", 0),
        "metrics.challenge.num_vulnerable: claimed 0, recomputed from challenge.parquet: 20",
    ),
    (
        "pool-size",
        _set("metrics.challenge.pool_size", 10),
        "metrics.challenge.pool_size: 10, but the challenge uses every only_bg_t background",
    ),
    (
        "challenge-acc",
        _set("metrics.challenge.challenge_accuracy", 0.9),
        "metrics.challenge.challenge_accuracy: claimed 0.9, recomputed from challenge.parquet: 0.444444",
    ),
]


@pytest.mark.parametrize(
    "edit,expected", [(e, x) for _, e, x in JSON_TAMPERING], ids=[i for i, _, _ in JSON_TAMPERING]
)
def test_tampered_results_json_is_rejected(capsys, tmp_path, eval_submissions, edit, expected):
    folder = _copy(eval_submissions.folders["bg"], tmp_path)
    path = _edit_json(folder, edit)
    code, out, err = _validate(capsys, path, registry=eval_submissions.registry)
    assert code == 1
    assert out == []
    reasons = [line for line in err if not line.endswith("rejected")]
    assert len(reasons) == 1, err
    assert reasons[0].startswith(f"{path}: {expected}"), reasons[0]
    assert err[-1] == "1 of 1 submission(s) rejected"


def _flip_first(variant):
    def edit(rows):
        for row in rows:
            if row["variant"] == variant:
                row["prediction"] = (row["label"] + 1) % 9
                break
        return rows

    return edit


PARQUET_TAMPERING = [
    (
        "flipped-prediction",
        "predictions.parquet",
        _flip_first("original"),
        [
            "results.json: metrics.accuracy.original.value: claimed 1, "
            "recomputed from predictions.parquet: 0.972222"
        ],
    ),
    (
        "dropped-row",
        "predictions.parquet",
        lambda rows: [r for r in rows if r["image_id"] != rows[0]["image_id"] or r["variant"] != "original"],
        [
            "predictions.parquet: variant original: 35 rows, "
            "but results.json data.variants.original.count is 36"
        ],
    ),
    (
        "duplicated-row",
        "predictions.parquet",
        lambda rows: (
            [r for r in rows if r["variant"] != "only_fg"]
            + [r for r in rows if r["variant"] == "only_fg"][:-1]
            + [r for r in rows if r["variant"] == "only_fg"][:1]
        ),
        ["predictions.parquet: variant only_fg: an image_id appears twice"],
    ),
    (
        "vulnerable-flipped",
        "challenge.parquet",
        lambda rows: [
            {
                **r,
                "vulnerable": False,
                "bg_class_fooled": False,
                "fooling_bg_image_id": None,
                "fooling_prediction": None,
            }
            if i == 0
            else r
            for i, r in enumerate(rows)
        ],
        [
            "results.json: metrics.challenge.challenge_accuracy: claimed 0.444444, "
            "recomputed from challenge.parquet: 0.472222"
        ],
    ),
    (
        "challenge-row-dropped",
        "challenge.parquet",
        lambda rows: rows[1:],
        ["challenge.parquet: rows: 35 foregrounds, but data.variants.fg_mask.count is 36"],
    ),
    (
        "fooling-bg-missing",
        "challenge.parquet",
        lambda rows: [{**r, "fooling_bg_image_id": None} if i == 0 else r for i, r in enumerate(rows)],
        ["challenge.parquet: row "],
    ),
]


@pytest.mark.parametrize(
    "name,edit,expected",
    [(f, e, x) for _, f, e, x in PARQUET_TAMPERING],
    ids=[i for i, _, _, _ in PARQUET_TAMPERING],
)
def test_tampered_predictions_are_rejected(capsys, tmp_path, eval_submissions, name, edit, expected):
    folder = _copy(eval_submissions.folders["bg"], tmp_path)
    _edit_parquet(folder / name, edit)
    code, out, err = _validate(capsys, folder / "results.json", registry=eval_submissions.registry)
    assert code == 1
    reasons = [line.removeprefix(f"{folder}/") for line in err if not line.endswith("rejected")]
    for want in expected:
        assert any(r.startswith(want) for r in reasons), (want, reasons)
    # each reason is one line that names the file and the field
    assert all(
        r.split(": ")[0] in ("results.json", "predictions.parquet", "challenge.parquet") for r in reasons
    )


def test_missing_and_broken_files_are_rejected(capsys, tmp_path, eval_submissions):
    folder = _copy(eval_submissions.folders["fg"], tmp_path)
    (folder / "challenge.parquet").unlink()
    broken = _copy(eval_submissions.folders["fg"], tmp_path, "broken")
    (broken / "results.json").write_text("{not json")
    nopreds = _copy(eval_submissions.folders["fg"], tmp_path, "nopreds")
    (nopreds / "predictions.parquet").unlink()
    code, out, err = _validate(
        capsys,
        folder,
        broken,
        nopreds / "results.json",
        tmp_path / "absent.json",
        registry=eval_submissions.registry,
    )
    assert code == 1
    assert err == [
        f"{folder / 'challenge.parquet'}: file: missing; metrics.challenge needs the per-foreground outcomes",
        f"{broken / 'results.json'}: file: not valid JSON "
        "(Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
        f"{nopreds / 'predictions.parquet'}: file: missing; "
        "a submission ships the predictions its metrics come from",
        f"{tmp_path / 'absent.json'}: file: does not exist",
        "4 of 4 submission(s) rejected",
    ]


def test_official_edition_needs_registered_fingerprints(capsys, tmp_path, eval_submissions):
    folder = _copy(eval_submissions.folders["fg"], tmp_path)

    def official(doc):
        doc["data"].update(source="release", edition="official", seed=None)

    path = _edit_json(folder, official)
    # the packaged registry: nobody has registered the release's fingerprints here
    code = main(["validate", str(path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[0] == (
        f"{path}: data: no canonical fingerprints registered for edition 'release official' in "
        f"{leaderboard.CANONICAL_FINGERPRINTS}; register the edition's export with "
        "`in9-leaderboard register EXPORT_DIR`"
    )


def test_data_option_accepts_an_export_without_a_registry(capsys, tmp_path, eval_submissions):
    empty = tmp_path / "empty.json"
    code, out, err = _validate(
        capsys, eval_submissions.folders["bg"], registry=empty, extra=["--data", str(eval_submissions.export)]
    )
    assert (code, err) == (0, [])


def test_unpinned_local_model_needs_the_flag(capsys, tmp_path, eval_submissions):
    folder = _copy(eval_submissions.folders["fg"], tmp_path)
    _edit_json(folder, _set("model.revision", None))
    assert _validate(capsys, folder, registry=eval_submissions.registry)[0] == 1
    assert _validate(capsys, folder, registry=eval_submissions.registry, extra=["--allow-unpinned"])[0] == 0


def test_usage_errors_exit_2(capsys, tmp_path):
    assert main(["build", str(tmp_path / "nowhere"), "--out", str(tmp_path / "site")]) == 2
    assert (
        capsys.readouterr().err == f"error: {tmp_path / 'nowhere'}: not a folder; pass the folder that holds "
        "in9-eval output folders\n"
    )
    assert main(["register", str(tmp_path)]) == 2
    assert "no in9_export.json" in capsys.readouterr().err


def _row(model, created, path, original=90.0):
    return {
        "edition": "synthetic seeded seed=0",
        "model": model,
        "revision": "a" * 40,
        "label_mode": "top1-mapped",
        "preprocess": "paper",
        "precision": "no",
        "created_at": created,
        "path": path,
        "original": original,
    }


def test_duplicates_resolve_to_the_newest():
    rows = [
        _row("m", "2026-01-02", "b", 80.0),
        _row("m", "2026-01-01", "a", 70.0),
        _row("n", "2026-01-01", "c"),
    ]
    kept, dropped = leaderboard.deduplicate(rows)
    assert [(r["model"], r["original"]) for r in kept] == [("n", 90.0), ("m", 80.0)]
    assert [r["path"] for r in dropped] == ["a"]
    other_protocol = {**_row("m", "2026-01-03", "d"), "label_mode": "restricted"}
    assert len(leaderboard.deduplicate(rows + [other_protocol])[0]) == 3


@pytest.fixture()
def built_site(tmp_path, eval_submissions):
    """Both submissions, a duplicate of one (newer), and a tampered one; built into a site."""
    results = Path(shutil.copytree(eval_submissions.root, tmp_path / "results"))
    dup = Path(shutil.copytree(results / "fg-model", results / "fg-model-rerun"))
    _edit_json(dup, _set("created_at", "2026-11-28T13:00:00+00:00"))
    bad = Path(shutil.copytree(results / "fg-model", results / "tampered"))
    _edit_json(bad, _set("metrics.accuracy.original.value", 0.5))
    site = tmp_path / "site"
    code = main(["build", str(results), "--out", str(site), "--canonical", str(eval_submissions.registry)])
    assert code == 0
    return site, results


def test_build_writes_rows_and_reported_rows_apart(capsys, built_site):
    site, results = built_site
    out = capsys.readouterr().out
    assert "2 row(s), 1 rejected, 1 duplicate(s) replaced" in out
    md = (site / "leaderboard.md").read_text()
    reproduced, reported = md.split("## Reported in publications")
    assert (
        "| org/bg-model | aaaaaaaaaaaa | 1.2k | 100.0 | 100.0 | 11.1 | 88.9 [77.8, 97.2] | 100.0 | 44.4 | "
        "top1-mapped | paper | no |"
    ) in reproduced
    assert (
        "| org/fg-model | bbbbbbbbbbbb | 1.2k | 100.0 | 100.0 | 100.0 | 0.0 [0.0, 0.0] | 0.0 | 100.0 |"
        in reproduced
    )
    assert reproduced.count("org/fg-model") == 1  # the duplicate resolved to one row
    assert "ResNet-50" not in reproduced
    assert (
        "| ResNet-50 | torchvision resnet50-19c8e357 | IN-1k | 95.6 | 86.2 | 78.9 | 7.3 | – | 22.3 |"
        in reported
    )
    assert "## Rejected submissions" in reported
    assert (
        f"{results / 'tampered' / 'results.json'}: metrics.accuracy.original.value: claimed 0.5" in reported
    )


def test_page_is_self_contained(built_site):
    site, _ = built_site
    html = (site / "index.html").read_text()
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    assert 'src="http' not in html and "url(" not in html and "fetch(" not in html
    assert html.count('<tr data-model="org/') == 2
    assert html.count('<span class="badge reported">reported</span></td>') == 17  # every published row
    assert '<svg id="scatter"' in html and '<svg id="challenge"' in html


def test_build_is_deterministic(tmp_path, eval_submissions):
    a, b = tmp_path / "a", tmp_path / "b"
    for site in (a, b):
        leaderboard.build_site(eval_submissions.root, site, registry_path=eval_submissions.registry)
    assert (a / "index.html").read_bytes() == (b / "index.html").read_bytes()
    assert (a / "leaderboard.md").read_bytes() == (b / "leaderboard.md").read_bytes()
