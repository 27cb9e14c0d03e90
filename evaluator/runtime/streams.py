"""CPU inference streams: threads that each pull the next batch from one loader and forward it.

One process on a CPU with >= 2 threads may run 2 streams, each on its share of the cores: one stream's
decoding and Python overhead then fill the cores while the other computes, where a single stream leaves them
to the model's threads waiting. ``evaluator.predict`` keeps one stream when decoding is cheap next to the
forward (``STREAMS_MIN_DECODE_SHARE``). Elsewhere (a GPU, several processes, decoding worker processes) one.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch

# Two streams pay off only when decoding a batch is a real share of its forward (benchmarks/bench_eval.py
# measures both executions): below this share one stream on all threads is as fast or faster.
STREAMS_MIN_DECODE_SHARE = 0.1


def inference_streams(accelerator, num_workers: int = 0) -> int:
    """How many batches a CPU process may work on at once, each stream on its share of the cores."""
    if accelerator.device.type != "cpu" or accelerator.num_processes > 1 or num_workers:
        return 1
    return 2 if torch.get_num_threads() >= 2 else 1


class BatchStreams:
    """Pulls batches from one loader and scores them, from one or several threads; collects the rows."""

    def __init__(self, batches, score, gather, bar) -> None:
        self.batches, self.score, self.gather, self.bar = batches, score, gather, bar
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.parts: list[tuple] = []

    def run(self, budget: int | None = None, num_threads: int | None = None) -> tuple[float, float] | None:
        """Score up to ``budget`` batches (all if None); (decode s, forward s) of the last, None when done."""
        if num_threads is not None:
            torch.set_num_threads(num_threads)  # this thread's share (thread-local)
        last: tuple[float, float] | None = None
        try:
            with torch.inference_mode():
                while not self.stop.is_set() and budget != 0:
                    t0 = time.perf_counter()
                    with self.lock:  # the loader decodes here: a stream decodes while the others compute
                        batch = next(self.batches, None)
                    if batch is None:
                        return None
                    t1 = time.perf_counter()
                    scored = self.score(*batch)
                    last = (t1 - t0, time.perf_counter() - t1)
                    with self.lock:
                        gathered = self.gather(scored)
                        self.parts.append(tuple(t.cpu() for t in gathered))
                        self.bar.update(len(gathered[0]))
                    budget = None if budget is None else budget - 1
        except BaseException:
            self.stop.set()  # the other streams stop at their next batch; this error is the run's
            raise
        return last

    def run_parallel(
        self, streams: int, num_threads: int, budget: int | None = None
    ) -> list[tuple[float, float] | None]:
        """``streams`` threads, each scoring up to ``budget`` batches (all if None); what each
        :meth:`run` returned (None for a stream that found the loader done)."""
        with ThreadPoolExecutor(streams, thread_name_prefix="in9-stream") as pool:
            futures = [pool.submit(self.run, budget, num_threads) for _ in range(streams)]
            return [f.result() for f in futures]
