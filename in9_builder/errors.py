"""User-facing errors: one line that names the file, field or flag and says what to do."""


class In9Error(Exception):
    """An error caused by the user's input. CLIs print ``error: <message>`` and exit 2, no traceback."""
