"""The command lines: one module per command (``eval``, ``leaderboard``), the only place that knows flags.

Library code raises :class:`~in9_builder.errors.In9Error` naming Python arguments;
:func:`in9_builder.errors.run_command` prints it as one ``error:`` line naming the flag, exit status 2.
"""
