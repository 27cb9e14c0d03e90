"""``in9-eval``: score an image classifier on the IN-9 variants (and the challenge); a thin shell over
:func:`evaluator.api.evaluate`. Runs on one CPU/GPU, or under ``torchrun`` / ``accelerate launch``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluator.config import LABEL_MODES, PRECISIONS, PREPROCESS_PROTOCOLS
from evaluator.results.report import console_table
from evaluator.results.schema import RESULTS_FILE
from in9_builder.errors import In9Error, flag_names, run_command

EPILOG = """examples:
  in9-eval --model microsoft/resnet-50 --revision <sha>
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
    p.add_argument("--model", required=True, help="Hub model id or local folder (config.json + weights)")
    p.add_argument("--revision", help="Hub branch, tag or commit sha (the resolved sha is recorded)")
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
    p.add_argument("--output-dir", type=Path, help="default: results/<model-slug>/")
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


def model_slug(model_id: str) -> str:
    """The default output folder name of a model: its id's last part."""
    return Path(str(model_id).rstrip("/")).name.replace(" ", "_") or "model"


def _disable_library_progress_bars() -> None:
    import datasets  # heavy: loaded only once the arguments parsed
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def run(args: argparse.Namespace) -> int:
    # torch and the model code load only once the arguments parsed: --help and usage errors stay instant.
    from evaluator.api import evaluate
    from evaluator.runtime.accelerator import make_accelerator

    if args.no_progress:  # also the libraries' own bars (weight loading, dataset preparation)
        _disable_library_progress_bars()
    if args.label_map is not None and not args.label_map.is_file():
        raise In9Error(f"label_map={args.label_map}: file not found", argument="label_map")
    output_dir = args.output_dir or Path("results") / model_slug(args.model)
    results = evaluate(
        args.model,
        args.data,
        args.variants,
        revision=args.revision,
        batch_size=args.batch_size,
        precision=args.precision,
        label_mode=args.label_mode,
        preprocess=args.preprocess,
        label_map=args.label_map,
        prompts=args.prompts,
        limit=args.limit,
        output_dir=output_dir,
        trust_remote_code=args.trust_remote_code,
        allow_pickle=args.allow_pickle,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        num_workers=args.num_workers,
        progress=not args.no_progress,
        challenge=args.challenge,
        challenge_analysis=args.challenge_analysis,
        analysis_sample=args.analysis_sample,
        tune_cpu=True,  # this command owns its process: allocator, heap and accelerate state
        accelerator=make_accelerator(args.precision, reset=True),
    )
    from accelerate.state import PartialState

    if PartialState().is_main_process:
        print(console_table(results))
        print(f"\nwrote {output_dir / RESULTS_FILE} (+ predictions.parquet, summary.md)")
    close_process_group()
    return 0


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
