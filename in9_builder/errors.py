"""User-facing errors: one line that names the file, field or argument and says what to do."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping


class In9Error(ValueError):
    """An error caused by the caller's input; a ``ValueError``, so library users catch it as one.

    Messages name Python arguments as ``name=value`` (``batch_size=0: use 1 or more``; ``argument`` records
    the one it is about); a CLI writes them as its flags with :meth:`for_cli` (``--batch-size 0: use 1 or
    more``), prints ``error: <message>`` and exits 2, never a traceback.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument

    def for_cli(self, flags: Mapping[str, str]) -> str:
        """The message with the Python argument names written as the CLI's flags, so a CLI user reads the
        flags they typed: every ``name=value`` of a known argument becomes ``--flag value`` (``name=True``
        the bare switch), a back-quoted `` `name` `` the flag, and a leading bare ``argument`` its flag."""

        def flag(match: re.Match) -> str:
            name, value = match.group(1), match.group(2)
            if name not in flags:
                return match.group(0)
            return flags[name] if value == "True" else f"{flags[name]} {value}"

        message = re.sub(r"(?<![\w.-])([a-z][a-z0-9_]*)=(True\b|\S*)", flag, str(self))
        message = re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: flags.get(m.group(1), m.group(0)), message)
        if self.argument in flags:
            message = re.sub(rf"^{re.escape(self.argument)}(?![\w=])", flags[self.argument], message)
        return message


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
