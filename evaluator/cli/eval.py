"""``in9-eval``: score an image classifier on the IN-9 variants (and the challenge); a thin shell over
:func:`evaluator.api.evaluate`. Runs on one CPU/GPU, or under ``torchrun`` / ``accelerate launch``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluator.config import LABEL_MODES, PRECISIONS, PREPROCESS_PROTOCOLS, parse_seeds
from evaluator.results.report import console_table
from evaluator.results.schema import RESULTS_FILE, model_slug
from in9_builder.errors import In9Error, flag_names, run_command

EPILOG = """examples:
  in9-eval --model microsoft/resnet-50 --revision <sha>
  in9-eval --model ./a --model ./b --data ./in9 --output-dir results/     (a sweep: results/a/, results/b/)
  in9-eval --models models.txt --seeds 5 --skip-existing                  (one id[@revision] per line)
  in9-eval --model ./my-model --data ./in9 --variants original,mixed_same,mixed_rand --limit 10
  torchrun --nproc_per_node 2 -m evaluator.cli --model ./my-model --data synthetic   (CPU, 2 processes)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="in9-eval",
        description="Score an image classifier on IN-9 (Xiao et al., "
        "ICLR 2021): accuracy on every variant, BG-Gap, and the challenge.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        action="append",
        help="Hub model id or local folder (config.json + weights); repeat it to score several models in one "
        "run (each variant decoded once for all of them; id@revision pins one)",
    )
    p.add_argument(
        "--models",
        type=Path,
        help="file with one model id[@revision] per line (# comments) to score in one run",
    )
    p.add_argument("--revision", help="Hub branch, tag or commit sha of a single --model (recorded resolved)")
    p.add_argument(
        "--data",
        default="in9",
        help="in9 (the official release, downloaded once and cached; "
        "default), an export folder, a release tarball or folder, synthetic[:per_class=N,size=N], "
        "or a Hub dataset id",
    )
    p.add_argument("--variants", help="comma-separated variants (default: all 8)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--precision", default="no", choices=PRECISIONS)
    p.add_argument(
        "--label-mode",
        default="top1-mapped",
        choices=LABEL_MODES,
        help="how a non-9-way head is scored (default: the paper's top1-mapped)",
    )
    p.add_argument(
        "--preprocess",
        default="paper",
        choices=PREPROCESS_PROTOCOLS,
        help="paper: no resize of 224 images + the model's mean/std (default); processor: the "
        "model's image processor as configured",
    )
    p.add_argument(
        "--label-map", type=Path, help="JSON file: model label (name or index) -> IN-9 index or -1"
    )
    p.add_argument(
        "--prompts",
        help="zero-shot models (CLIP, SigLIP): imagenet-1k (default: the 1000 ImageNet-1k class names x the "
        '80 CLIP templates, mapped 1000 -> 9), nine (the 9 IN-9 names), or a JSON file {"classnames": [...], '
        '"templates": ["a photo of a {c}.", ...]}',
    )
    p.add_argument("--limit", type=int, help="first N images per class (smoke runs)")
    p.add_argument(
        "--output-dir",
        type=Path,
        help="one model: the folder to write (default results/<model-slug>/); several: the parent of one "
        "<model-slug>/ folder per model (default results/)",
    )
    p.add_argument(
        "--seeds",
        help="also score the mixed variants re-rendered with these background draws: a list (0,1,2) or a "
        "count (5 = 0..4); results.json gains metrics.seeds (mean, std); the data's own images stay the "
        "headline",
    )
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip a model whose output folder holds a finished result for the same protocol and data",
    )
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model repo's own Python code")
    p.add_argument("--allow-pickle", action="store_true", help="allow pickle (.bin) weights")
    p.add_argument("--cache-dir", type=Path, help="datasets + prediction cache (default: ~/.cache/in9)")
    p.add_argument("--no-cache", action="store_true", help="recompute every variant, store nothing")
    p.add_argument(
        "--num-workers",
        type=int,
        help="image decoding processes (default: 0 on CPU, where two inference streams decode and forward "
        "in turn; spare cores, max 4, beside a GPU)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--challenge", action="store_true", help="also run the adversarial-backgrounds challenge")
    p.add_argument(
        "--challenge-analysis",
        action="store_true",
        help="with --challenge: per-background attack success rates and the paper's figures",
    )
    p.add_argument(
        "--analysis-sample", type=int, help="with --challenge-analysis: a seeded sample of N foregrounds"
    )
    return p


# The Python names the library's messages use for what this command calls by other flags.
FLAG_ALIASES = {"protocol": "--preprocess", "model_id": "--model"}


def _disable_library_progress_bars() -> None:
    import datasets  # heavy: loaded only once the arguments parsed
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def _model_specs(args: argparse.Namespace) -> tuple[list, bool]:
    """The models to score and whether this is a sweep (several models, or a --models file)."""
    from evaluator.sweep import ModelSpec, read_models_file  # torch: only once the arguments parsed

    given = list(args.model or [])
    if not given and args.models is None:
        raise In9Error("model: give --model ID (repeatable) or --models FILE", argument="model")
    specs = [ModelSpec.parse(m) for m in given] + (read_models_file(args.models) if args.models else [])
    sweep = len(specs) > 1 or args.models is not None
    if sweep and args.revision:
        raise In9Error(
            f"revision={args.revision}: applies to a single --model; pin each model of a sweep as "
            "id@revision",
            argument="revision",
        )
    if not sweep:
        specs = [ModelSpec(given[0], args.revision)]
    return specs, sweep


def _options(args: argparse.Namespace) -> dict:
    """The evaluate() keywords every model of this run gets."""
    return dict(
        batch_size=args.batch_size,
        precision=args.precision,
        label_mode=args.label_mode,
        preprocess=args.preprocess,
        label_map=args.label_map,
        prompts=args.prompts,
        limit=args.limit,
        trust_remote_code=args.trust_remote_code,
        allow_pickle=args.allow_pickle,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        num_workers=args.num_workers,
        progress=not args.no_progress,
        challenge=args.challenge,
        challenge_analysis=args.challenge_analysis,
        analysis_sample=args.analysis_sample,
        seeds=parse_seeds(args.seeds) if args.seeds is not None else (),
        tune_cpu=True,  # this command owns its process: allocator, heap and accelerate state
    )


def run(args: argparse.Namespace) -> int:
    if args.label_map is not None and not args.label_map.is_file():
        raise In9Error(f"label_map={args.label_map}: file not found", argument="label_map")
    options = _options(args)  # usage errors first: nothing is loaded or written before they pass
    specs, sweep = _model_specs(args)
    # torch and the model code load only once the arguments parsed: --help and usage errors stay instant.
    from evaluator.runtime.accelerator import make_accelerator

    if args.no_progress:  # also the libraries' own bars (weight loading, dataset preparation)
        _disable_library_progress_bars()
    accelerator = make_accelerator(args.precision, reset=True)
    code = (
        _run_sweep(args, specs, options, accelerator)
        if sweep
        else _run_one(args, specs[0], options, accelerator)
    )
    close_process_group()
    return code


def _run_one(args: argparse.Namespace, spec, options: dict, accelerator) -> int:
    from evaluator.api import evaluate
    from evaluator.sweep import is_finished

    output_dir = args.output_dir or Path("results") / model_slug(spec.id)
    if args.skip_existing and is_finished(output_dir, spec, args.data, args.variants, **options):
        print(f"{output_dir}: holds a finished result for this protocol and data; skipped (--skip-existing)")
        return 0
    results = evaluate(
        spec.id,
        args.data,
        args.variants,
        revision=spec.revision,
        output_dir=output_dir,
        accelerator=accelerator,
        **options,
    )
    if accelerator.is_main_process:
        print(console_table(results))
        print(f"\nwrote {output_dir / RESULTS_FILE} (+ predictions.parquet, summary.md)")
    return 0


def _run_sweep(args: argparse.Namespace, specs: list, options: dict, accelerator) -> int:
    from evaluator.sweep import evaluate_many, sweep_table

    root = args.output_dir or Path("results")
    outcomes = evaluate_many(
        specs,
        args.data,
        args.variants,
        output_dir=root,
        skip_existing=args.skip_existing,
        accelerator=accelerator,
        **options,
    )
    if accelerator.is_main_process:
        print(sweep_table(outcomes))
        print(f"\nwrote {root}/<model>/{RESULTS_FILE} for each model scored")
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(lambda: run(args), {**flag_names(parser), **FLAG_ALIASES})


def close_process_group() -> None:
    """Leave a torchrun group cleanly: a gloo group still alive at interpreter exit can abort the process
    ("terminate called without an active exception") after all the work is written."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
