"""Errors that the CLI turns into a one-line message and exit code 2."""
from __future__ import annotations


class SimpairError(Exception):
    """A user-facing error: bad input, a missing model, a bad config.

    The CLI prints ``str(err)`` without a traceback and exits with ``exit_code``.
    """

    exit_code = 2


class InputError(SimpairError):
    """A data file that does not match the expected format.

    ``path`` and ``line`` name the place; the message says what was expected.
    """

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ModelNotFoundError(SimpairError):
    """A model name that resolves to nothing available offline."""


class ConfigError(SimpairError):
    """A config file with an unknown key or a value of the wrong type."""
