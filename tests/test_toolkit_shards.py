"""Byte-identical output across runs, process counts and shardings; resumable, mergeable work folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from in9_builder import release_layout
from in9_builder.cli import main
from in9_builder.errors import In9Error
from in9_builder.release_layout import write_release_layout
from in9_builder.sources.imagenet import ImagenetSource
from in9_builder.toolkit import shards


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(shards, "CHUNK_SIZE", 8)  # the 71-image tree -> 9 chunks, so 3 shards get 3 each
    monkeypatch.setattr(release_layout, "BATCH", 4)  # several batches per split for the writer's workers


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _release(imagenet, boxes, work_dir, out, num_proc=1) -> dict[str, bytes]:
    source = ImagenetSource(imagenet, boxes, work_dir=work_dir, num_proc=num_proc)
    return _files(write_release_layout(source, out, seed=0, num_proc=num_proc))


def _cli(imagenet, boxes, *extra) -> int:
    # One process unless a test asks for more (the default is every core): spawning workers costs seconds.
    args = ["toolkit", "--imagenet", imagenet, "--boxes", boxes, "--quiet", "--num-proc", 1, *extra]
    return main([str(a) for a in args])


@pytest.mark.slow  # worker processes build the data several times over
def test_two_runs_and_two_process_counts_are_byte_identical(toolkit_tree, tmp_path):
    writer, _, boxes = toolkit_tree
    imagenet = writer.root / "imagenet"
    first = _release(imagenet, boxes, tmp_path / "w1", tmp_path / "r1", num_proc=1)
    second = _release(imagenet, boxes, tmp_path / "w2", tmp_path / "r2", num_proc=1)
    parallel = _release(imagenet, boxes, tmp_path / "w3", tmp_path / "r3", num_proc=2)
    assert len(first) > 9 * 3 * 9 and first == second == parallel
    assert _files(tmp_path / "w1") == _files(tmp_path / "w2") == _files(tmp_path / "w3")


@pytest.mark.slow  # worker processes build the data several times over
def test_three_shards_merged_equal_one_machine(toolkit_tree, tmp_path):
    writer, _, boxes = toolkit_tree
    imagenet = writer.root / "imagenet"
    single = _release(imagenet, boxes, tmp_path / "single", tmp_path / "r1")
    work = tmp_path / "shared"
    for index in range(3):
        assert _cli(imagenet, boxes, "--work-dir", work, "--num-shards", 3, "--shard-index", index) == 0
    assert (
        _cli(imagenet, boxes, "--work-dir", work, "--merge", "--layout", "release", "--out", tmp_path / "r3")
        == 0
    )
    assert _files(tmp_path / "r3") == single
    # Shards on machines without a shared disk: one work folder each, merged by naming them all.
    for index in range(3):
        _cli(imagenet, boxes, "--work-dir", tmp_path / f"m{index}", "--num-shards", 3, "--shard-index", index)
    merged = [tmp_path / f"m{i}" for i in range(3)]
    assert _cli(imagenet, boxes, "--merge", *merged, "--layout", "release", "--out", tmp_path / "rm") == 0
    assert _files(tmp_path / "rm") == single


def test_merge_refuses_missing_shards(toolkit_tree, tmp_path, capsys):
    writer, _, boxes = toolkit_tree
    imagenet = writer.root / "imagenet"
    _cli(imagenet, boxes, "--work-dir", tmp_path / "w", "--num-shards", 3, "--shard-index", 1)
    assert _cli(imagenet, boxes, "--work-dir", tmp_path / "w", "--merge", "--out", tmp_path / "o") == 2
    assert "6 of 9 chunks are not built yet (first: chunk 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert (
        _cli(
            imagenet,
            boxes,
            "--work-dir",
            tmp_path / "w",
            "--merge",
            "--splits",
            "test",
            "--out",
            tmp_path / "o",
        )
        == 2
    )
    assert "holds shards of another index" in capsys.readouterr().err
    assert _cli(imagenet, boxes, "--num-shards", 3, "--shard-index", 3, "--work-dir", tmp_path / "w") == 2
    assert "--shard-index 3: must be between 0 and 2" in capsys.readouterr().err


def test_a_killed_build_resumes_where_it_stopped(toolkit_tree, tmp_path):
    writer, _, boxes = toolkit_tree
    source = ImagenetSource(writer.root / "imagenet", boxes, work_dir=tmp_path / "w")
    assert source.segment(num_shards=3, shard_index=0) == 3  # "killed" after a third of the chunks
    assert source.segment() == 6  # the rest, nothing twice
    assert source.segment() == 0
    chunk = sorted((tmp_path / "w").glob("index-*/chunk-*.pkl"))[4]
    before = chunk.read_bytes()
    chunk.unlink()  # a chunk lost mid-write never exists: files are renamed into place only when complete
    assert source.segment() == 1 and chunk.read_bytes() == before


def test_chunks_of_another_tree_are_refused(toolkit_tree, tmp_path):
    writer, _, boxes = toolkit_tree
    source = ImagenetSource(writer.root / "imagenet", boxes, work_dir=tmp_path / "w")
    source.segment()
    chunks = sorted((tmp_path / "w").glob("index-*/chunk-*.pkl"))
    chunks[1].write_bytes(chunks[0].read_bytes())
    with pytest.raises(In9Error, match="chunk was built from another ImageNet tree"):
        source.summary()


@pytest.mark.slow  # worker processes build the data several times over
def test_hub_export_of_a_merged_3_shard_build_equals_one_machine(toolkit_tree, tmp_path):
    writer, _, boxes = toolkit_tree
    imagenet = writer.root / "imagenet"
    splits = ["--splits", "test"]  # every shard and the merge must index the same splits
    export = ["--variants", "original,mixed_rand,fg_mask", "--num-proc", 2, *splits]
    assert _cli(imagenet, boxes, "--work-dir", tmp_path / "single", "--out", tmp_path / "one", *export) == 0
    for index in range(3):
        assert (
            _cli(
                imagenet,
                boxes,
                "--work-dir",
                tmp_path / "w",
                "--num-shards",
                3,
                "--shard-index",
                index,
                *splits,
            )
            == 0
        )
    assert (
        _cli(imagenet, boxes, "--work-dir", tmp_path / "w", "--merge", "--out", tmp_path / "three", *export)
        == 0
    )
    one, three = _files(tmp_path / "one"), _files(tmp_path / "three")
    parquet = {name: data for name, data in one.items() if name.endswith(".parquet")}
    assert {name.split("/")[0] for name in parquet} == {"original", "mixed_rand", "fg_mask"}
    assert parquet == {name: data for name, data in three.items() if name.endswith(".parquet")}
    assert one["in9_export.json"] == three["in9_export.json"]
