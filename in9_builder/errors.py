"""User-facing errors: one line that names the file, field or argument and says what to do."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping


class In9Error(ValueError):
    """An error caused by the caller's input; a ``ValueError``, so library users catch it as one.

    A message about one argument starts with the argument's Python name (``batch_size=0: use 1 or more``)
    and records it in ``argument``; a CLI turns that into its flag with :meth:`for_cli`
    (``--batch-size 0: use 1 or more``), prints ``error: <message>`` and exits 2, never a traceback.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument

    def for_cli(self, flags: Mapping[str, str]) -> str:
        """The message with ``argument`` written as the CLI flag.

        A leading ``argument=value`` becomes ``--flag value`` and a leading bare ``argument`` the flag;
        further on, ``argument=True`` (a switch) and a back-quoted `` `argument` `` become the flag.
        """
        message = str(self)
        flag = flags.get(self.argument or "")
        if flag is None:
            return message
        name = re.escape(self.argument)
        message = re.sub(rf"^{name}=", f"{flag} ", message)
        message = re.sub(rf"^{name}(?![\w=])", flag, message)
        message = re.sub(rf"(?<![\w.-]){name}=True\b", flag, message)
        return message.replace(f"`{self.argument}`", flag)


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
