"""Benchmark a sweep (issue 14) against the bare forwards of its models, measured in the same run.

1. ``--models`` (4) tiny ResNets on the ``--per-class`` x 9 (default 4,050) synthetic 224 px PNG set, every
   variant, in one ``evaluate_many`` run (each variant decoded once for all models) / the four models' bare
   forwards on pre-made normalised tensors for the same number of images. Target >= 0.9: decoding is paid
   once, not four times.
2. The same four models as four separate ``in9-eval`` processes, for comparison (wall time).
3. ``--seeds 5`` on one model over the three mixed variants: the cost of the seeded draws (the run's time
   minus that of the same run without seeds) against five times the mixed variants' bare forward.

The bare forward is the faster of one and two CPU streams with in9-eval's allocator settings
(``bench_eval.bare_forward``). Run: ``python benchmarks/bench_sweep.py [--per-class 450]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_eval import bare_forward, decode_cost_ms, make_export

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
MIXED = ["mixed_same", "mixed_rand", "mixed_next"]


def tiny_models(work: Path, count: int) -> list[Path]:
    from evaluator.demo.train_tiny import save_random_tiny_resnet
    from in9_builder.classes import imagenet1k_names

    folders = []
    for seed in range(count):
        folder = work / f"tiny-{seed}"
        if not (folder / "config.json").is_file():
            save_random_tiny_resnet(folder, imagenet1k_names(), seed=seed)
        folders.append(folder)
    return folders


def bare_seconds(folders: list[Path], images: int, batch_size: int) -> float:
    """Seconds the models' bare forwards take for ``images`` images each (the faster stream count)."""
    from evaluator.model.loading import load_model

    total = 0.0
    for folder in folders:
        loaded = load_model(str(folder))
        rate = max(bare_forward(loaded, images, batch_size), bare_forward(loaded, images, batch_size, 2))
        total += images / rate
    return total


def sweep_seconds(folders: list[Path], data: Path, work: Path, batch_size: int, **options) -> float:
    from evaluator.sweep import evaluate_many

    t0 = time.perf_counter()
    outcomes = evaluate_many(
        [str(f) for f in folders],
        str(data),
        output_dir=work / "sweep-out",
        batch_size=batch_size,
        use_cache=False,
        progress=False,
        cache_dir=work / "cache",
        tune_cpu=True,
        **options,
    )
    elapsed = time.perf_counter() - t0
    assert all(o.status == "ok" for o in outcomes), [o.error for o in outcomes]
    return elapsed


def separate_processes(folders: list[Path], data: Path, work: Path, batch_size: int) -> float:
    t0 = time.perf_counter()
    for folder in folders:
        cmd = [sys.executable, "-m", "evaluator.cli", "--model", str(folder), "--data", str(data)]
        cmd += ["--output-dir", str(work / "single-out" / folder.name), "--no-cache", "--no-progress"]
        cmd += ["--batch-size", str(batch_size), "--cache-dir", str(work / "cache")]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env={**os.environ})
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-class", type=int, default=450)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "in9-bench-sweep")
    parser.add_argument("--skip", nargs="*", default=[], choices=["sweep", "processes", "seeds"])
    args = parser.parse_args()
    from evaluator.runtime.cpu import tune_cpu_allocator

    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    data = make_export(work, args.per_class, None)
    folders = tiny_models(work, args.models)
    n = 9 * args.per_class
    tune_cpu_allocator()  # the baseline gets the allocator in9-eval runs with
    print(
        f"{args.models} tiny models, {n} images per variant, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads"
    )
    report: dict = {"images_per_variant": n, "models": args.models}
    if "sweep" not in args.skip:
        bare = bare_seconds(folders, 8 * n, args.batch_size)
        swept = sweep_seconds(folders, data, work, args.batch_size)
        ratio = bare / swept
        verdict = "OK" if ratio >= 0.9 else "BELOW TARGET"
        # With no spare core, decoding (paid once, shared by the models) and the forwards share the cores.
        from evaluator.data import open_data

        decode_ms = decode_cost_ms(open_data(str(data), cache_dir=work / "cache").variant("original"))
        forward_ms = 1e3 * torch.get_num_threads() * bare / (args.models * 8 * n)
        ceiling = forward_ms / (forward_ms + decode_ms / args.models)
        print(
            f"sweep of {args.models} models x 8 variants: {swept:.1f} s "
            f"({args.models * 8 * n / swept:.0f} img/s); "
            f"bare forwards {bare:.1f} s; ratio {ratio:.3f} (target >= 0.9) {verdict}\n  decoding "
            f"{decode_ms:.2f} ms of CPU per image once, forward {forward_ms:.2f} ms per image per model: "
            f"with no spare core the ratio cannot exceed {ceiling:.2f}"
        )
        report.update(sweep_s=swept, bare_s=bare, sweep_ratio=ratio, ceiling_without_spare_core=ceiling)
    if "processes" not in args.skip:
        separate = separate_processes(folders, data, work, args.batch_size)
        print(f"the same as {args.models} separate in9-eval processes: {separate:.1f} s")
        report["separate_processes_s"] = separate
    if "seeds" not in args.skip:
        seeds = tuple(range(args.seeds))
        plain = sweep_seconds(folders[:1], data, work, args.batch_size, variants=MIXED)
        seeded = sweep_seconds(folders[:1], data, work, args.batch_size, variants=MIXED, seeds=seeds)
        bare = bare_seconds(folders[:1], 3 * n * args.seeds, args.batch_size)
        cost = seeded - plain
        print(
            f"--seeds {args.seeds} on one model: run {seeded:.1f} s, without seeds {plain:.1f} s; the draws "
            f"cost "
            f"{cost:.1f} s against {bare:.1f} s of bare forward for {args.seeds} x 3 mixed variants "
            f"(ratio {bare / cost:.3f})"
        )
        report.update(seeded_s=seeded, unseeded_s=plain, seeds_bare_s=bare, seeds_ratio=bare / cost)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
