"""What the command-line tools share: ``--version`` and one exit code per kind of failure.

Every ``transvert-*`` command reports a failure as one line, ``<command>: <message>``, and exits with

====  ===========================================================================================
code  meaning
====  ===========================================================================================
0     done
1     an unexpected error: a bug in TransVert (the traceback is printed; please report it)
2     a usage error: an unknown option, a missing or malformed argument (argparse's own code)
3     bad input: a file that is missing, unreadable, implausible or inconsistent with the others
4     the output is refused: it overlaps an input, holds something else, appeared during the run,
      or cannot be written (read-only, a file where a folder is needed, a symbolic link)
5     the machine cannot do the job: a missing optional package, an absent device, too little memory
130   interrupted (Ctrl-C); nothing half-written is left in place
====  ===========================================================================================
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable

from transvert_monai.errors import EnvironmentProblemError, OutputRefusedError, TransVertInputError

__all__ = [
    "EXIT_OK",
    "EXIT_BUG",
    "EXIT_USAGE",
    "EXIT_INPUT",
    "EXIT_OUTPUT",
    "EXIT_ENVIRONMENT",
    "EXIT_INTERRUPTED",
    "add_version_argument",
    "exit_code",
    "run_command",
]

EXIT_OK = 0
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_OUTPUT = 4
EXIT_ENVIRONMENT = 5
EXIT_INTERRUPTED = 130

logger = logging.getLogger("transvert_monai")


def add_version_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--version`` (``<prog> <package version>``) to ``parser``; return it."""
    from transvert_monai import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def exit_code(error: BaseException) -> int:
    """The exit code of an exception (see the module docstring)."""
    if isinstance(error, OutputRefusedError):
        return EXIT_OUTPUT
    if isinstance(error, (EnvironmentProblemError, MemoryError)):
        return EXIT_ENVIRONMENT
    if isinstance(error, ModuleNotFoundError) and not str(error.name or "").startswith("transvert_monai"):
        return EXIT_ENVIRONMENT  # an optional package that is not installed; a broken import of our own is a bug
    if isinstance(error, (TransVertInputError, FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError)):
        return EXIT_INPUT
    if isinstance(error, PermissionError):  # an input we may not read (outputs are checked as OutputRefusedError)
        return EXIT_INPUT
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_BUG


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, (KeyError, FileNotFoundError)) and not text:
        text = repr(error)
    return text or type(error).__name__


def run_command(prog: str, body: Callable[[], int | None]) -> int:
    """Run ``body`` and turn what it raises into one logged line and the exit code; return the code."""
    try:
        code = body()
    except KeyboardInterrupt:
        logger.error("%s: interrupted; nothing half-written is left in place.", prog)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - every error becomes one line and a documented exit code
        code = exit_code(err)
        if code == EXIT_BUG:
            traceback.print_exc(file=sys.stderr)
            logger.error(
                "%s: unexpected %s: %s. This is a bug in TransVert; please report it with the traceback above.",
                prog,
                type(err).__name__,
                _one_line(err),
            )
        else:
            logger.error("%s: %s", prog, _one_line(err))
        return code
    return EXIT_OK if code is None else int(code)
