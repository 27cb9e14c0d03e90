"""``in9-build``: argument parsing and error presentation over the Python API, one module per subcommand.

  in9-build synthetic --out DIR [--per-class N] [--scene-seed N] [--seed N] [--tarball]   synthetic.py
        the synthetic source in the exact layout of the original release (a fake release)
  in9-build export --source release|synthetic|imagenet [--data-dir PATH] [--seed N] [--variants ...]
                   --out DIR [--push-to-hub ORG/NAME]                                    export.py
        a Hub-ready dataset folder
  in9-build info DIR                                                                     info.py
        what an export holds
  in9-build toolkit --imagenet DIR --boxes BOXES --out OUT ...                           toolkit.py
        IN-9 / IN-9L from an ImageNet tree (GrabCut needs the ``[toolkit]`` extra, OpenCV)

Each module has ``add_parser(subparsers)``, which registers the subcommand and sets ``func`` (the parsed
arguments -> exit status) and ``flags`` (Python argument -> flag). A user error prints ``error: <message>``
naming the flag (``in9_builder.errors.run_command``) and exits 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import run_command
from . import export, info, synthetic, toolkit

SUBCOMMANDS = (synthetic, export, info, toolkit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="in9-build", description="Build and export the IN-9 datasets.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_command(lambda: int(args.func(args) or 0), args.flags)
    except KeyboardInterrupt:
        print("interrupted: nothing was half-written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
