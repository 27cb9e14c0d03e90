"""IN-9 (the backgrounds challenge, Xiao et al., ICLR 2021) as a Hugging Face ``datasets`` builder and export.

``in9_builder.In9`` is the builder; ``in9_builder.export.export`` writes a Hub-ready dataset folder.

Modules, each importing only from those listed before it:
  classes, errors, scene, fingerprint   the class table, user errors, the Scene record, content fingerprints
  atomic                                the one way outputs are written (atomic files, folder swaps)
  encode, render                        pixels -> stored bytes; scenes -> the IN-9 variants
  toolkit/                              the paper's ImageNet toolkit (boxes, filters, GrabCut, shards, ...)
  release_layout                        the original release's folder layout, from any source
  sources/                              where scenes come from: synthetic, release, imagenet (the toolkit)
  builder                               the ``datasets`` builder over a source
  export                                the Hub-ready folder (parquet, card, fingerprints)
  cli/                                  ``in9-build``, one module per subcommand
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
