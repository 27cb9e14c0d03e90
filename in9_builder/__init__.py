"""IN-9 (the backgrounds challenge, Xiao et al., ICLR 2021) as a Hugging Face ``datasets`` builder and export.

``in9_builder.In9`` is the builder; ``in9_builder.export.export`` writes a Hub-ready dataset folder.
"""

from __future__ import annotations

from .classes import CLASS_NAMES, CONFIGS, IMAGE_VARIANTS, MIXED_VARIANTS
from .errors import In9Error

__version__ = "0.1.0"

__all__ = ["CLASS_NAMES", "CONFIGS", "IMAGE_VARIANTS", "MIXED_VARIANTS", "In9", "In9Error", "__version__"]


def __getattr__(name: str):
    # Lazy: importing the package must not import datasets (the class table is used by light tools too).
    if name == "In9":
        from .builder import In9

        return In9
    raise AttributeError(name)
