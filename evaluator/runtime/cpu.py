"""Opt-in CPU process tuning for an evaluation run: glibc malloc settings and a frozen heap.

A CPU forward allocates and frees activations of tens of MB per layer. glibc serves those with fresh
``mmap`` pages (or trims the heap after each free), so every layer pays page faults. Raising the mmap
threshold to its maximum (32 MiB) and not trimming freed memory lets freed activations be reused; peak memory
is unchanged (the heap keeps what the run needed at its peak), and memory is not handed back to the OS until
the process ends. Each thread would otherwise get its own malloc arena, each keeping its own peak (CPU runs
forward two batches at once from two threads, :mod:`evaluator.runtime.streams`), so one arena is shared.
``benchmarks/bench_eval.py`` prints the forward with and without these settings.

These settings change the whole process, so only ``in9-eval`` (which owns its process) applies them by
default; the Python API does so only when asked (``evaluate(..., tune_cpu=True)``). Applied once per process,
only for CPU runs, only on glibc; ``IN9_MALLOC_TUNING=0`` turns it off. The setting is recorded in
``results.json`` (``environment.cpu_allocator``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # <malloc.h>
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 2**31 - 1

_state: str | None = None


def tune_cpu_allocator(device: str | object = "cpu") -> str:
    """Apply the settings above for a run on ``device`` (only a CPU run; idempotent); returns what is in
    effect, for ``results.json``."""
    global _state
    if getattr(device, "type", str(device).split(":")[0]) != "cpu":
        return allocator_state()  # an accelerator's memory is not malloc's: leave the host's alone
    if _state is not None:
        return _state
    if os.environ.get("IN9_MALLOC_TUNING", "1").lower() in ("0", "false", "no"):
        _state = "default (IN9_MALLOC_TUNING=0)"
        return _state
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, 1))
        ok = all([libc.mallopt(option, value) == 1 for option, value in settings])
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        ok = False
    _state = "glibc mmap_threshold=32MiB trim_threshold=2GiB arena_max=1" if ok else "default"
    return _state


def allocator_state() -> str:
    """What :func:`tune_cpu_allocator` did in this process ("default" if it was not called)."""
    return _state or "default"


@contextmanager
def tuned_process(device: str | object, enabled: bool) -> Iterator[None]:
    """With ``enabled``: the allocator settings above, and the heap frozen for the duration.

    What exists when a run starts (the model, the libraries: hundreds of thousands of objects) outlives it;
    frozen, the collection after each variant visits only the variant's own objects.
    """
    if not enabled:
        yield
        return
    tune_cpu_allocator(device)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
