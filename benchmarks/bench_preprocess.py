"""Benchmark the two preprocessing paths on the same batch, in the same run (issue 13).

The tensor path (:class:`evaluator.model.preprocess.Preprocess`, batched on uint8 tensors) against the
fallback (:class:`evaluator.model.processor_check.ProcessorPreprocess`: the model's own image processor, PIL
backend, one image at a time) on ``--images`` 224 px images with a ResNet-50-style processor (ConvNeXT rule:
resize 256 + centre crop 224, bicubic, ImageNet mean/std), under both protocols; images/s, median of
``--rounds``, and the largest |difference| between the two outputs. Threads: torch's default (all cores).
Run: ``python benchmarks/bench_preprocess.py [--images 256 --batch-size 32 --rounds 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from evaluator.model.preprocess import from_image_processor
from evaluator.model.processor_check import ProcessorPreprocess


def resnet50_processor():
    from transformers import ConvNextImageProcessorPil

    return ConvNextImageProcessorPil(
        crop_pct=0.875,
        size={"shortest_edge": 224},
        resample=3,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )


def images_per_second(preprocess, batches, rounds: int) -> float:
    preprocess(batches[0])  # warm-up (resample matrices, factor maps)
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for batch in batches:
            preprocess(batch)
        rates.append(sum(len(b) for b in batches) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    nhwc = torch.from_numpy(rng.integers(0, 256, (args.images, 224, 224, 3), dtype=np.uint8))
    # Channels-last views of decoded NHWC arrays: what the evaluator's loader hands the preprocessing.
    batches = [
        nhwc[i : i + args.batch_size].permute(0, 3, 1, 2) for i in range(0, args.images, args.batch_size)
    ]
    processor = resnet50_processor()
    print(f"{args.images} images 224x224, batch {args.batch_size}, {torch.get_num_threads()} threads")
    print(f"{'protocol':<10} {'tensor img/s':>13} {'processor img/s':>16} {'speed-up':>9} {'max |diff|':>11}")
    for protocol in ("paper", "processor"):
        tensor = from_image_processor(processor, protocol)
        fallback = ProcessorPreprocess(processor, protocol, input_size=tensor.input_size)
        diff = (tensor(batches[0]) - fallback(batches[0])).abs().max().item()
        fast = images_per_second(tensor, batches, args.rounds)
        slow = images_per_second(fallback, batches, args.rounds)
        print(f"{protocol:<10} {fast:>13.0f} {slow:>16.0f} {fast / slow:>8.1f}x {diff:>11.2e}")


if __name__ == "__main__":
    main()
