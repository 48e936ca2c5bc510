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
:class:`OutputRefusedError`      ``FileExistsError``             an output path TransVert will not write: it
                                 (an ``OSError``)                overlaps an input, holds something that is
                                                                 not a previous output of the same command,
                                                                 appeared during the run, or is not writable
:class:`EnvironmentProblemError` ``RuntimeError``                the machine cannot do the job: a missing
                                                                 optional package, an absent device, too
                                                                 little memory
===============================  ==============================  =============================================

A missing file raises :class:`FileNotFoundError`, as Python does. Messages name the file or
parameter, the problem and the fix. The command-line tools turn each kind into its own exit code
(:mod:`transvert_monai.cli`).
"""

from __future__ import annotations

__all__ = [
    "TransVertInputError",
    "UnreadableFileError",
    "CheckpointMismatchError",
    "ConfigTypeError",
    "OutputRefusedError",
    "EnvironmentProblemError",
]


class TransVertInputError(ValueError):
    """Bad input: a file, array or parameter TransVert cannot use as given (the message says why and how to fix it)."""


class UnreadableFileError(TransVertInputError):
    """A file that cannot be read at all: corrupt, truncated, empty, or in another format than expected."""


class CheckpointMismatchError(TransVertInputError, RuntimeError):
    """A weights file whose tensors do not fit the configured network (another variant, width or depth)."""


class ConfigTypeError(TransVertInputError, TypeError):
    """A parameter of the wrong type, e.g. a bundle config override giving a number where a list is expected."""


class OutputRefusedError(FileExistsError):
    """An output path that is not written: it overlaps an input, holds something that is not a previous output
    of the same command (or anything at all, without ``--overwrite``), appeared while the job ran, or cannot be
    written (read-only, a file where a folder is needed, a symbolic link)."""


class EnvironmentProblemError(RuntimeError):
    """The machine cannot run the job as asked: an optional package is missing, the device does not exist, or
    the job needs more memory than the machine has. Nothing is wrong with the input."""
