"""in9-leaderboard validate / build / register on real in9-eval output: the files pass, every tampering is
rejected with one line naming the file and the field, registrations land in the user registry (never in the
package), the page holds every row and keeps the reported rows apart."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hub_cards
from evaluator.cli.leaderboard import main
from evaluator.leaderboard import validate
from evaluator.leaderboard.registry import edition_label, load_registry, register_export, user_registry_path
from evaluator.leaderboard.site import build_site, deduplicate, display_name
from hub_cards import CANONICAL_FINGERPRINTS, leaderboard_page, published_rows
from in9_builder.errors import In9Error
from tests.fixtures_leaderboard import LONG_MODEL, long_names, model_running_imports, page_rows, seeds_block

UNPINNED = ["--allow-unpinned"]  # the fixture's models are local folders: no revision to record


def _validate(capsys, *paths, registry, extra=UNPINNED) -> tuple[int, list[str], list[str]]:
    code = main(["validate", *map(str, paths), "--canonical", str(registry), *extra])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def _validate_default(capsys, *paths):
    """validate without --canonical: the packaged registry plus the user registry."""
    code = main(["validate", *map(str, paths), *UNPINNED])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def _copy(folder: Path, tmp_path: Path, name: str = "sub") -> Path:
    return Path(shutil.copytree(folder, tmp_path / name))


def _doc(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


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


def _g(value: float) -> str:
    return f"{value:.6g}"


def test_real_submissions_validate(capsys, eval_submissions):
    files = [f / "results.json" for f in eval_submissions.folders.values()]
    code, out, err = _validate(capsys, *files, registry=eval_submissions.registry)
    assert (code, err) == (0, [])
    assert out == [f"ok: {f}" for f in files]
    # what is validated is what in9-eval wrote: every variant, the masks and the challenge
    doc = _doc(eval_submissions.folders["in9"])
    assert len(doc["data"]["variants"]) == 9 and doc["metrics"]["challenge"]["num_foregrounds"] == 36


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
        In9Error,
        match=r"in9_export.json: configs.mixed_rand.fingerprint .* does not match the parquet files",
    ):
        register_export(export, tmp_path / "registry.json")
    assert not (tmp_path / "registry.json").exists()


_DELETE = object()


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


def _metric(doc, path):
    node = doc
    for key in path.split("."):
        node = node[key]
    return node


# (id, edit of results.json, expected reason after "<file>: " as a function of the untouched document)
JSON_TAMPERING = [
    ("schema", _set("schema", "in9-results/0"), lambda d: "schema: 'in9-results/0' is not 'in9-results/1'"),
    ("model-id", _set("model.id", _DELETE), lambda d: "model.id: missing"),
    ("model-not-object", _set("model", "x"), lambda d: "model: must be a JSON object, got str"),
    (
        "challenge-not-object",
        _set("metrics.challenge", [1]),
        lambda d: "metrics.challenge: must be a JSON object",
    ),
    ("num-params", _set("model.num_params", "x"), lambda d: "model.num_params: 'x' is not a parameter count"),
    (
        "revision-not-sha",
        _set("model.revision", "main"),
        lambda d: "model.revision: 'main' is not a commit sha",
    ),
    (
        "fingerprint",
        _set("data.variants.mixed_rand.fingerprint", "sha256:" + "0" * 64),
        lambda d: (
            f"data.variants.mixed_rand.fingerprint: sha256:{'0' * 64} is not the canonical "
            f"{d['data']['variants']['mixed_rand']['fingerprint']} of edition 'synthetic seeded seed=0'"
        ),
    ),
    (
        "edition",
        _set("data.seed", 1),
        lambda d: "data: no canonical fingerprints registered for edition 'synthetic seeded seed=1'",
    ),
    (
        "limit",
        _set("protocol.limit", 2),
        lambda d: "protocol.limit: 2: a submission must cover the full test set",
    ),
    (
        "label-mode",
        _set("protocol.label_mode", "top5"),
        lambda d: "protocol.label_mode: 'top5' is not one of",
    ),
    ("no-environment", _set("environment", _DELETE), lambda d: "schema: missing field 'environment'"),
    (
        "accuracy",
        _set("metrics.accuracy.original.value", 0.99),
        lambda d: (
            "metrics.accuracy.original.value: claimed 0.99, recomputed from predictions.parquet: "
            + _g(_metric(d, "metrics.accuracy.original.value"))
        ),
    ),
    (
        "accuracy-ci",
        _set("metrics.accuracy.mixed_rand.ci95", [0.1, 0.2]),
        lambda d: "metrics.accuracy.mixed_rand.ci95: claimed [0.1, 0.2], recomputed from predictions.parquet",
    ),
    (
        "correct",
        _set("metrics.accuracy.no_fg.correct", 30),
        lambda d: (
            "metrics.accuracy.no_fg.correct: claimed 30, recomputed from predictions.parquet: "
            + str(_metric(d, "metrics.accuracy.no_fg.correct"))
        ),
    ),
    (
        "bg-gap",
        _set("metrics.bg_gap.value", 0.5),
        lambda d: (
            "metrics.bg_gap.value: claimed 0.5, recomputed from predictions.parquet: "
            + _g(_metric(d, "metrics.bg_gap.value"))
        ),
    ),
    (
        "bg-gap-ci",
        _set("metrics.bg_gap.ci95", [0.3, 0.6]),
        lambda d: "metrics.bg_gap.ci95: claimed [0.3, 0.6], recomputed from predictions.parquet",
    ),
    (
        "bg-gap-missing",
        _set("metrics.bg_gap", _DELETE),
        lambda d: "metrics.bg_gap: missing; recomputed from predictions.parquet",
    ),
    (
        "challenge-count",
        _set("metrics.challenge.num_vulnerable", 0),
        lambda d: (
            "metrics.challenge.num_vulnerable: claimed 0, recomputed from challenge.parquet: "
            + str(_metric(d, "metrics.challenge.num_vulnerable"))
        ),
    ),
    (
        "challenge-acc",
        _set("metrics.challenge.challenge_accuracy", 0.9),
        lambda d: (
            "metrics.challenge.challenge_accuracy: claimed 0.9, recomputed from challenge.parquet: "
            + _g(_metric(d, "metrics.challenge.challenge_accuracy"))
        ),
    ),
    (
        "pool-size",
        _set("metrics.challenge.pool_size", 10),
        lambda d: "metrics.challenge.pool_size: 10, but the challenge uses every only_bg_t background",
    ),
]


@pytest.mark.parametrize(
    "edit,expected", [(e, x) for _, e, x in JSON_TAMPERING], ids=[i for i, _, _ in JSON_TAMPERING]
)
def test_tampered_results_json_is_rejected(capsys, tmp_path, eval_submissions, edit, expected):
    folder = _copy(eval_submissions.folders["in9"], tmp_path)
    want = expected(_doc(folder))
    path = _edit_json(folder, edit)
    code, out, err = _validate(capsys, path, registry=eval_submissions.registry)
    assert code == 1
    assert out == []
    assert len(err) == 2, err  # one line per reason, then the count
    assert err[0].startswith(f"{path}: {want}"), err[0]
    assert err[1] == "1 of 1 submission(s) rejected"


def test_unpinned_model_is_rejected_without_the_flag(capsys, tmp_path, eval_submissions):
    path = eval_submissions.folders["in9"] / "results.json"
    code, out, err = _validate(capsys, path, registry=eval_submissions.registry, extra=[])
    assert code == 1
    assert err[0] == (
        f"{path}: model.revision: missing; the weights must be pinned: evaluate a Hub model "
        "(in9-eval records "
        "its commit sha) or pass --allow-unpinned for local runs"
    )
    folder = _copy(eval_submissions.folders["in9"], tmp_path)
    _edit_json(folder, _set("model.revision", "c" * 40))
    assert _validate(capsys, folder, registry=eval_submissions.registry, extra=[])[0] == 0


def _flip_first_prediction(rows):
    row = next(r for r in rows if r["variant"] == "original")
    row["prediction"] = (row["label"] + 1) % 9 if row["prediction"] == row["label"] else row["label"]
    return rows


def _first_vulnerable_robust(rows):
    row = next(r for r in rows if r["vulnerable"])
    row.update(vulnerable=False, bg_class_fooled=False, fooling_bg_image_id=None, fooling_prediction=None)
    return rows


def _original_accuracy(folder):
    rows = [
        r for r in pq.read_table(folder / "predictions.parquet").to_pylist() if r["variant"] == "original"
    ]
    return sum(r["prediction"] == r["label"] for r in rows) / len(rows)


def _challenge_accuracy(folder):
    rows = pq.read_table(folder / "challenge.parquet").to_pylist()
    return sum(not r["vulnerable"] for r in rows) / len(rows)


# (id, file, edit of its rows, expected reason after "<folder>/" from (untouched doc, tampered folder))
PARQUET_TAMPERING = [
    (
        "flipped-prediction",
        "predictions.parquet",
        _flip_first_prediction,
        lambda d, f: (
            "results.json: metrics.accuracy.original.value: claimed "
            f"{_g(d['metrics']['accuracy']['original']['value'])}, recomputed from predictions.parquet: "
            f"{_g(_original_accuracy(f))}"
        ),
    ),
    (
        "dropped-row",
        "predictions.parquet",
        lambda rows: (
            [r for r in rows if r["variant"] != "original"]
            + [r for r in rows if r["variant"] == "original"][1:]
        ),
        lambda d, f: (
            "predictions.parquet: variant original: 35 rows, but results.json "
            "data.variants.original.count is 36"
        ),
    ),
    (
        "duplicated-row",
        "predictions.parquet",
        lambda rows: (
            [r for r in rows if r["variant"] != "only_fg"]
            + [r for r in rows if r["variant"] == "only_fg"][:-1]
            + [r for r in rows if r["variant"] == "only_fg"][:1]
        ),
        lambda d, f: "predictions.parquet: variant only_fg: an image_id appears twice",
    ),
    (
        "bad-label",
        "predictions.parquet",
        lambda rows: [{**r, "label": 9} if i == 0 else r for i, r in enumerate(rows)],
        lambda d, f: (
            "predictions.parquet: label/prediction: values outside 0..8 (labels) or -1..8 (predictions)"
        ),
    ),
    (
        "vulnerable-flipped",
        "challenge.parquet",
        _first_vulnerable_robust,
        lambda d, f: (
            "results.json: metrics.challenge.challenge_accuracy: claimed "
            f"{_g(d['metrics']['challenge']['challenge_accuracy'])}, recomputed from challenge.parquet: "
            f"{_g(_challenge_accuracy(f))}"
        ),
    ),
    (
        "challenge-row-dropped",
        "challenge.parquet",
        lambda rows: rows[1:],
        lambda d, f: "challenge.parquet: rows: 35 foregrounds, but data.variants.fg_mask.count is 36",
    ),
    (
        "fooling-bg-missing",
        "challenge.parquet",
        lambda rows: [{**r, "fooling_bg_image_id": None} if r["vulnerable"] else r for r in rows],
        lambda d, f: "challenge.parquet: row ",
    ),
]


@pytest.mark.parametrize(
    "name,edit,expected",
    [(f, e, x) for _, f, e, x in PARQUET_TAMPERING],
    ids=[i for i, _, _, _ in PARQUET_TAMPERING],
)
def test_tampered_predictions_are_rejected(capsys, tmp_path, eval_submissions, name, edit, expected):
    folder = _copy(eval_submissions.folders["in9"], tmp_path)
    doc = _doc(folder)
    _edit_parquet(folder / name, edit)
    want = expected(doc, folder)
    code, out, err = _validate(capsys, folder / "results.json", registry=eval_submissions.registry)
    assert code == 1
    reasons = [line.removeprefix(f"{folder}/") for line in err[:-1]]
    assert any(r.startswith(want) for r in reasons), (want, reasons)
    # each reason is one line that names the file and the field
    assert all(
        r.split(": ")[0] in ("results.json", "predictions.parquet", "challenge.parquet") for r in reasons
    )


def test_missing_and_broken_files_are_rejected(capsys, tmp_path, eval_submissions):
    folder = _copy(eval_submissions.folders["in1k"], tmp_path)
    (folder / "challenge.parquet").unlink()
    broken = _copy(eval_submissions.folders["in1k"], tmp_path, "broken")
    (broken / "results.json").write_text("{not json")
    nopreds = _copy(eval_submissions.folders["in1k"], tmp_path, "nopreds")
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
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        f"{nopreds / 'predictions.parquet'}: file: missing; "
        "a submission ships the predictions its metrics come from",
        f"{tmp_path / 'absent.json'}: file: does not exist",
        "4 of 4 submission(s) rejected",
    ]


def test_official_edition_needs_registered_fingerprints(capsys, tmp_path, eval_submissions):
    folder = _copy(eval_submissions.folders["in1k"], tmp_path)

    def official(doc):
        doc["data"].update(source="release", edition="official", seed=None)

    path = _edit_json(folder, official)
    # the packaged and the (session's) user registry: nobody has registered the release's fingerprints
    code = main(["validate", str(path), *UNPINNED])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[0] == (
        f"{path}: data: no canonical fingerprints registered for edition 'release official' in "
        f"{CANONICAL_FINGERPRINTS} + {user_registry_path()}; register the edition's export with "
        "`in9-leaderboard register EXPORT_DIR`"
    )


def test_data_option_accepts_an_export_without_a_registry(capsys, tmp_path, eval_submissions):
    code, out, err = _validate(
        capsys,
        eval_submissions.folders["in9"],
        registry=tmp_path / "empty.json",
        extra=[*UNPINNED, "--data", str(eval_submissions.export)],
    )
    assert (code, err) == (0, [])


def test_usage_errors_exit_2(capsys, tmp_path):
    assert main(["build", str(tmp_path / "nowhere"), "--out", str(tmp_path / "site")]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {tmp_path / 'nowhere'}: not a folder; pass the folder that holds in9-eval output "
        "folders\n"
    )
    assert main(["register", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path}: no in9_export.json; pass a folder written by `in9-build export`\n"
    )


def test_importing_validation_loads_no_torch():
    code = "import sys\nimport evaluator.leaderboard.validate\nprint('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.splitlines() == ["False"], run.stderr


def test_leaderboard_never_imports_model_running_code():
    assert model_running_imports(Path(validate.__file__).parent) == {}


@pytest.mark.slow
def test_validate_cli_in_a_fresh_process_needs_no_torch(eval_submissions):
    code = (
        "import sys\nfrom evaluator.cli.leaderboard import main\n"
        f"code = main(['validate', {str(eval_submissions.folders['in9'])!r}, '--canonical', "
        f"{str(eval_submissions.registry)!r}, '--allow-unpinned'])\n"
        "print(code, 'torch' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.splitlines()[-1] == "0 False", run.stderr


def _package_files() -> dict[Path, bytes]:
    root = Path(hub_cards.__file__).parent
    return {
        p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts
    }


def test_register_without_canonical_fills_the_user_registry_and_leaves_the_package_alone(
    capsys, tmp_path, monkeypatch, eval_submissions
):
    user = tmp_path / "user" / "canonical_fingerprints.json"
    monkeypatch.setenv("IN9_REGISTRY", str(user))
    before = _package_files()
    assert main(["register", str(eval_submissions.export)]) == 0
    assert capsys.readouterr().out == (f"registered synthetic seeded seed=0: 9 config(s) in {user}\n")
    assert _package_files() == before
    assert json.loads(user.read_text()) == json.loads(eval_submissions.registry.read_text())
    # validation reads the packaged registry and the user registry together
    code, out, err = _validate_default(capsys, eval_submissions.folders["in9"])
    assert (code, err) == (0, [])
    # registering the same edition again replaces its entry
    assert main(["register", str(eval_submissions.export)]) == 0
    assert len(json.loads(user.read_text())["editions"]) == 1
    assert _package_files() == before


def test_user_registry_follows_the_cache_variables(tmp_path, monkeypatch):
    monkeypatch.delenv("IN9_REGISTRY")
    monkeypatch.delenv("IN9_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_registry_path() == tmp_path / "home" / ".cache" / "in9" / "canonical_fingerprints.json"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_registry_path() == tmp_path / "xdg" / "in9" / "canonical_fingerprints.json"
    monkeypatch.setenv("IN9_CACHE", str(tmp_path / "in9cache"))
    assert user_registry_path() == tmp_path / "in9cache" / "canonical_fingerprints.json"
    monkeypatch.setenv("IN9_REGISTRY", str(tmp_path / "mine.json"))
    assert user_registry_path() == tmp_path / "mine.json"


def test_registry_errors_name_the_flag(capsys, tmp_path, monkeypatch, eval_submissions):
    folder = eval_submissions.folders["in9"]
    assert main(["validate", str(folder), "--canonical", str(tmp_path), *UNPINNED]) == 2
    assert capsys.readouterr().err == (
        f"error: --canonical {tmp_path}: is a folder; name the registry's JSON file\n"
    )
    with pytest.raises(In9Error, match=r"^registry_path=.*: is a folder") as caught:
        validate.validate_files([folder], registry_path=tmp_path)
    assert caught.value.argument == "registry_path"
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert main(["register", str(eval_submissions.export), "--canonical", str(blocked / "r.json")]) == 2
    assert capsys.readouterr().err.startswith(f"error: --canonical {blocked / 'r.json'}: cannot write it (")
    monkeypatch.setenv("IN9_REGISTRY", str(blocked / "r.json"))
    assert main(["register", str(eval_submissions.export)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {blocked / 'r.json'}: cannot write the user registry (") and err.endswith(
        "); set IN9_REGISTRY to a writable file\n"
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    monkeypatch.setenv("IN9_REGISTRY", str(broken))
    assert main(["validate", str(folder), *UNPINNED]) == 2
    assert capsys.readouterr().err.startswith(f"error: {broken}: not a valid registry (")
    broken.write_text('{"schema": "in9-canonical/1"}')
    with pytest.raises(In9Error, match="'editions' must be a list of editions"):
        load_registry(broken)


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
    kept, dropped = deduplicate(rows)
    assert [(r["model"], r["original"]) for r in kept] == [("n", 90.0), ("m", 80.0)]
    assert [r["path"] for r in dropped] == ["a"]
    other_protocol = {**_row("m", "2026-01-03", "d"), "label_mode": "restricted"}
    assert len(deduplicate(rows + [other_protocol])[0]) == 3
    # A zero-shot model scored with two prompt sets is two classifiers: two rows.
    other_prompts = {**_row("m", "2026-01-03", "e"), "prompts": "0123456789ab"}
    assert len(deduplicate(rows + [other_prompts])[0]) == 3


@pytest.fixture()
def built_site(tmp_path, eval_submissions):
    """Both submissions, a newer rerun of one (a duplicate), and a tampered one; built into a site."""
    results = Path(shutil.copytree(eval_submissions.root, tmp_path / "results"))
    dup = Path(shutil.copytree(results / "in9", results / "in9-rerun"))
    _edit_json(dup, _set("created_at", "2099-01-01T00:00:00+00:00"))
    bad = Path(shutil.copytree(results / "in9", results / "tampered"))
    _edit_json(bad, _set("metrics.accuracy.original.value", 0.5))
    site = tmp_path / "site"
    code = main(
        ["build", str(results), "--out", str(site), "--canonical", str(eval_submissions.registry), *UNPINNED]
    )
    assert code == 0
    return site, results


def _pct(x):
    return f"{100 * x:.1f}"


def test_build_writes_rows_and_reported_rows_apart(capsys, built_site, eval_submissions):
    site, results = built_site
    assert "2 row(s), 1 rejected, 1 duplicate(s) replaced" in capsys.readouterr().out
    md = (site / "leaderboard.md").read_text()
    reproduced, reported = md.split("## Reported in publications")
    for key in ("in1k", "in9"):
        doc = _doc(eval_submissions.folders[key])
        m = doc["metrics"]
        acc = [_pct(m["accuracy"][v]["value"]) for v in ("original", "mixed_same", "mixed_rand")]
        gap = f"{_pct(m['bg_gap']['value'])} [{_pct(m['bg_gap']['ci95'][0])}, {_pct(m['bg_gap']['ci95'][1])}]"
        name = Path(doc["model"]["id"]).name  # a local model: its folder's name, not its path
        row = (
            f"| {name} (local) | unpinned | {doc['model']['num_params'] / 1e3:.1f}k | "
            f"{' | '.join(acc)} | {gap} | "
            f"{_pct(m['accuracy']['only_bg_t']['value'])} | {_pct(m['challenge']['challenge_accuracy'])} | "
            "top1-mapped | paper | no |"
        )
        assert reproduced.count(f"| {name} (local) |") == 1  # the duplicate resolved to one row
        assert row in reproduced, (row, reproduced)
        assert doc["model"]["id"] not in md
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
    assert html.count('<tr data-model="') == 2 + 17
    assert html.count('<span class="badge reported">reported</span></td>') == 17  # every published row
    assert '<svg id="scatter-1" class="scatter"' in html and '<svg id="challenge"' in html


def test_build_is_deterministic(tmp_path, eval_submissions):
    a, b = tmp_path / "a", tmp_path / "b"
    for site in (a, b):
        build_site(eval_submissions.root, site, registry_path=eval_submissions.registry, allow_unpinned=True)
    assert (a / "index.html").read_bytes() == (b / "index.html").read_bytes()
    assert (a / "leaderboard.md").read_bytes() == (b / "leaderboard.md").read_bytes()


def test_local_models_are_named_by_their_folder(built_site, eval_submissions):
    site, _ = built_site
    html, md = (site / "index.html").read_text(), (site / "leaderboard.md").read_text()
    for folder in eval_submissions.folders.values():
        path = _doc(folder)["model"]["id"]  # in9-eval records a local model by its absolute path
        name = Path(path).name
        assert f'title="local folder {path}">{name}<span class="badge local">local</span></td>' in html
        assert f"| {name} (local) |" in md and path not in md  # the path stays out of the markdown


def test_hub_ids_keep_their_name():
    assert display_name({"id": "org/name", "source": "hub"}) == "org/name"
    assert display_name({"id": "/data/models/tiny/", "source": "local"}) == "tiny"
    assert display_name({"id": "C:\\models\\tiny", "source": "local"}) == "tiny"
    # files written before model.source: an absolute path is a folder, anything else a Hub id
    assert display_name({"id": "/data/models/tiny"}) == "tiny"
    assert display_name({"id": "org/name"}) == "org/name"


def test_long_hub_names_are_shown_whole(eval_submissions):
    rows = page_rows(eval_submissions.folders, {"in9": long_names})
    html = leaderboard_page.render_html(rows, published_rows())
    md = leaderboard_page.render_markdown(rows, published_rows())
    cell = re.search(rf'<td class="text wrap" data-value="{re.escape(LONG_MODEL)}">(.*?)</td>', html)
    assert cell and cell.group(1) == LONG_MODEL  # no folder tooltip, no badge: a Hub id as it is
    assert f"| {LONG_MODEL} | 0123456789ab |" in md
    assert 'title="0123456789abcdef0123456789abcdef01234567">0123456789ab</td>' in html


SVG = "{http://www.w3.org/2000/svg}"


def _scatter_panels(html: str) -> dict[str, list[tuple[str, str]]]:
    """Each scatter panel of a page, by the edition it is titled with: [(point kind, point's edition)]."""
    panels = {}
    for text in re.findall(r'<svg id="scatter-\d+".*?</svg>', html, re.S):
        svg = ET.fromstring(text)
        title = svg.find(f"{SVG}text[@class='title']").text
        assert title == f"Data: {svg.get('data-edition')}"
        points = [el for el in svg.iter() if "pt" in (el.get("class") or "").split()]
        panels[svg.get("data-edition")] = [
            (el.get("class").split()[1], el.get("data-edition")) for el in points
        ]
    return panels


def _as_edition(source: str, edition: str, seed: int | None):
    def edit(doc):
        doc["data"] |= {"source": source, "edition": edition, "seed": seed}

    return edit


def test_one_scatter_per_edition_and_reported_rows_only_on_the_release(eval_submissions):
    rows = page_rows(eval_submissions.folders) + page_rows(
        eval_submissions.folders,
        {"in1k": _as_edition("synthetic", "seeded", 1), "in9": _as_edition("release", "official", None)},
    )
    panels = _scatter_panels(leaderboard_page.render_html(rows, published_rows()))
    release = edition_label({"source": "release", "edition": "official", "seed": None})
    assert leaderboard_page.RELEASE_EDITION == release
    assert sorted(panels) == sorted([release, "synthetic seeded seed=0", "synthetic seeded seed=1"])
    for edition, points in panels.items():
        assert {e for _, e in points} == {edition}, edition  # never a point of another edition
        kinds = [k for k, _ in points]
        assert kinds.count("reproduced") == sum(r["edition"] == edition for r in rows)
        assert kinds.count("reported") == (17 if edition == release else 0)
    with pytest.raises(ValueError, match="another edition"):
        leaderboard_page.scatter_svg(rows, [], "synthetic seeded seed=0")


def test_reported_rows_get_a_release_panel_of_their_own(built_site):
    site, _ = built_site
    panels = _scatter_panels((site / "index.html").read_text())
    assert {e: len(p) for e, p in panels.items()} == {"release official": 17, "synthetic seeded seed=0": 2}
    assert {k for k, _ in panels["release official"]} == {"reported"}


def _md_rows(md: str) -> list[dict[str, str]]:
    """The first reproduced table of a leaderboard.md as {header: cell} per row."""
    lines = [line for line in md.split("## Reported")[0].splitlines() if line.startswith("|")]
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[2:]
    ]


def _with_seeds(*summaries, seeds=(0, 1, 2)):
    def edit(doc):
        doc["metrics"]["seeds"] = seeds_block(*summaries, seeds=seeds)

    return edit


def test_seed_statistics_stand_beside_the_headline_numbers(eval_submissions):
    docs = {key: _doc(folder) for key, folder in eval_submissions.folders.items()}
    rows = page_rows(eval_submissions.folders, {"in9": _with_seeds((0.6034, 0.0211), (0.0978, 0.0154))})
    seeded = next(r for r in rows if r["model"] == docs["in9"]["model"]["id"])
    assert seeded["seeds"]["n"] == 3 and seeded["seeds"]["seeds"] == [0, 1, 2]
    assert seeded["seeds"]["mixed_rand"] == pytest.approx({"mean": 60.34, "std": 2.11})
    assert seeded["seeds"]["bg_gap"] == pytest.approx({"mean": 9.78, "std": 1.54})
    # the headline numbers stay the submission's own data's
    assert seeded["mixed_rand"] == 100 * docs["in9"]["metrics"]["accuracy"]["mixed_rand"]["value"]
    assert seeded["bg_gap"] == 100 * docs["in9"]["metrics"]["bg_gap"]["value"]
    assert next(r for r in rows if r is not seeded)["seeds"] is None

    md = leaderboard_page.render_markdown(rows, published_rows())
    table = {r["Model"]: r for r in _md_rows(md)}
    cells = table["tiny-resnet-in9 (local)"]
    assert (cells["Mixed-Rand"], cells["Mixed-Rand over seeds"]) == (
        f"{seeded['mixed_rand']:.1f}",
        "60.3 ± 2.1 (3 seeds)",
    )
    assert cells["BG-gap over seeds"] == "9.8 ± 1.5 (3 seeds)"
    assert cells["BG-gap [95\u00a0%\u00a0CI]"].startswith(f"{seeded['bg_gap']:.1f} [")
    assert table["tiny-resnet-in1k (local)"]["Mixed-Rand over seeds"] == "–"
    headers = list(cells)
    assert headers.index("Mixed-Rand over seeds") == headers.index("Mixed-Rand") + 1  # beside the headline

    html = leaderboard_page.render_html(rows, published_rows())
    assert "<span>60.3 ± 2.1</span> <span>(3 seeds)</span>" in html and 'id="seed-note"' in html
    assert 'title="background-draw seeds 0, 1, 2"' in html


def test_one_seed_has_no_spread_and_no_seeds_no_columns(eval_submissions, built_site):
    rows = page_rows(eval_submissions.folders, {"in9": _with_seeds((0.6, None), (0.1, None), seeds=(4,))})
    cells = {r["Model"]: r for r in _md_rows(leaderboard_page.render_markdown(rows, published_rows()))}
    assert cells["tiny-resnet-in9 (local)"]["Mixed-Rand over seeds"] == "60.0 (1 seed)"
    site, _ = built_site
    assert "over seeds" not in (site / "leaderboard.md").read_text()
    assert "over seeds" not in (site / "index.html").read_text()
