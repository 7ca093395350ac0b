"""User-facing errors: one line, naming the file and record, never a traceback."""


class EnpactError(Exception):
    """An error caused by user input or environment; the CLI prints it as one line and exits 1."""
