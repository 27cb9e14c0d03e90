"""The ``Accelerator`` an evaluation runs on, made without touching the caller's accelerate state."""

from __future__ import annotations

import os

import torch

from evaluator.config import PRECISIONS
from in9_builder.errors import In9Error


def make_accelerator(precision: str = "no", *, cpu: bool | None = None, reset: bool = False):
    """An ``Accelerator`` for inference; without a GPU ``cpu=True`` (so torchrun gives MULTI_CPU).

    accelerate keeps one state per process. When the caller (a training job, an earlier evaluation) has set
    it up with another mixed precision it is not reset behind their back: the caller passes their own
    ``accelerator=`` or evaluates in a fresh process. ``reset=True`` is for a caller that owns the process
    (``in9-eval``): any earlier state is replaced (the process group is kept).
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if precision not in PRECISIONS:
        raise In9Error(
            f"precision={precision!r}: choose one of {', '.join(PRECISIONS)}", argument="precision"
        )
    if cpu is None:
        cpu = not torch.cuda.is_available()
    if precision == "fp16" and cpu:
        raise In9Error(
            "precision='fp16' needs a GPU; on CPU use precision='bf16' or 'no'", argument="precision"
        )
    if reset:
        AcceleratorState._reset_state()
    elif AcceleratorState._shared_state:
        current = str(AcceleratorState().mixed_precision)
        if current != precision:
            raise In9Error(
                f"precision={precision!r}: accelerate is already set up in this process with mixed "
                f"precision {current!r}; pass that precision, pass accelerator=, or run in a new process",
                argument="precision",
            )
    return Accelerator(cpu=cpu, mixed_precision=precision)


def default_num_workers(device: torch.device | str = "cpu") -> int:
    """Decoding worker processes: none on CPU, one per spare core (at most 4) beside an accelerator.

    On CPU the model's threads use every core during the forward; a worker process would preempt them
    (slower than letting the inference streams decode, see :mod:`evaluator.runtime.streams`).
    """
    if torch.device(device).type == "cpu":
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))
