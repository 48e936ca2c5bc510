"""The exceptions TransVert raises for bad input, so callers can tell a user's mistake from a bug.

Every class derives from :class:`ValueError` (``except ValueError`` keeps working); two also derive
from the built-in type an older release raised or Python convention suggests:

===============================  ==============================  =============================================
exception                        also a                          raised for
===============================  ==============================  =============================================
:class:`TransVertInputError`     ``ValueError``                  bad input: wrong layout, labels, geometry, ...
:class:`UnreadableFileError`     ``TransVertInputError``         a file that cannot be parsed at all: corrupt,
                                                                 truncated, or not the expected format
:class:`CheckpointMismatchError` ``RuntimeError``                weights that do not fit the configured network
:class:`ConfigTypeError`         ``TypeError``                   a parameter (config override) of the wrong type
===============================  ==============================  =============================================

A missing file raises :class:`FileNotFoundError` and an output folder that is not empty
:class:`FileExistsError`, as Python does. Messages name the file or parameter, the problem and the fix.
"""

from __future__ import annotations

__all__ = ["TransVertInputError", "UnreadableFileError", "CheckpointMismatchError", "ConfigTypeError"]


class TransVertInputError(ValueError):
    """Bad input: a file, array or parameter TransVert cannot use as given (the message says why and how to fix it)."""


class UnreadableFileError(TransVertInputError):
    """A file that cannot be read at all: corrupt, truncated, empty, or in another format than expected."""


class CheckpointMismatchError(TransVertInputError, RuntimeError):
    """A weights file whose tensors do not fit the configured network (another variant, width or depth)."""


class ConfigTypeError(TransVertInputError, TypeError):
    """A parameter of the wrong type, e.g. a bundle config override giving a number where a list is expected."""
