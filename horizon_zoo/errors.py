"""Exceptions that carry a message meant for the user.

The CLI prints these as one paragraph and exits with the class's exit code; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class HorizonZooError(Exception):
    """Base class for errors the user can fix (bad input, missing backend, ...)."""

    exit_code = 2


class DataError(HorizonZooError):
    """Run data or release dates that do not satisfy the documented format."""

    exit_code = 2


class ModelError(HorizonZooError):
    """A Stan program that breaks the model contract or has an invalid header."""

    exit_code = 3


class BackendError(HorizonZooError):
    """No usable Stan backend, or compilation / sampling failed inside it."""

    exit_code = 4
