"""The ``environment`` block of results.json: Python, package versions, device and process count of a run.

It lives with the model-running code because it asks torch and the CPU allocator about the running process;
:mod:`evaluator.results` only stores the block it is given.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = (
    "in9-bench",
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "huggingface_hub",
    "numpy",
    "pillow",
    "pyarrow",
)


def package_versions() -> dict[str, str | None]:
    """The installed version of each of :data:`PACKAGES` (``None`` when one is not installed)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def environment(accelerator=None) -> dict:
    """Python, package versions, device and process count of this run."""
    import torch

    from evaluator.cpu_allocator import allocator_state

    device = str(accelerator.device) if accelerator is not None else "cpu"
    return {
        "python": platform.python_version(),
        "packages": package_versions(),
        "device": device,
        "device_name": torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "num_processes": accelerator.num_processes if accelerator is not None else 1,
        "distributed_type": str(accelerator.distributed_type) if accelerator is not None else "NO",
        "cpu_allocator": allocator_state(),
    }
