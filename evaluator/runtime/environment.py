"""What a run ran on, for ``results.json`` ``environment``: Python, package versions, device, processes."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

import torch

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
    "timm",  # optional: timm repositories
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def environment(accelerator=None, cpu_allocator: str = "default") -> dict:
    """Python, package versions, device and process count of this run, and the CPU allocator in effect."""
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
        "cpu_allocator": cpu_allocator,
    }
