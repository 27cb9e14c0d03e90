"""The command lines: one module per command, the only place that knows flag names.

Library code raises :class:`~in9_builder.errors.In9Error` naming Python arguments; :func:`run_command`
prints it as one ``error:`` line that names the flag instead, and returns exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping

from in9_builder.errors import In9Error


def flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Python argument name -> the parser's long flag for it (``batch_size`` -> ``--batch-size``)."""
    flags: dict[str, str] = {}
    for action in parser._actions:  # argparse has no public accessor for its actions
        for parsed in [action, *getattr(action, "_name_parser_map", {}).values()]:
            if isinstance(parsed, argparse.ArgumentParser):
                flags.update({k: v for k, v in flag_names(parsed).items() if k not in flags})
            elif parsed.option_strings:
                flags.setdefault(parsed.dest, max(parsed.option_strings, key=len))
    return flags


def run_command(command: Callable[[], int], flags: Mapping[str, str]) -> int:
    """Run ``command``; a user-input error becomes ``error: <message with flags>`` on stderr and exit 2."""
    try:
        return command()
    except In9Error as err:
        print(f"error: {err.for_cli(flags)}", file=sys.stderr)
        return 2
