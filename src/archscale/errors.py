"""One error model for the whole package.

Every error a user can act on is an :class:`ArchscaleError` (a ``ValueError``): its message names the field,
file or value at fault and says how to fix it. The command line prints that message as one line on stderr
and exits with ``exit_code`` — 2 for a mistake in what was asked (a usage error), 1 for a failure while
doing it (a tool missing, a download refused, runs that failed) — never with a traceback.
"""

from __future__ import annotations


class ArchscaleError(ValueError):
    """A problem the user can fix; ``hint``, when given, is appended to the message as the fix."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message if hint is None else f"{message}; {hint}")
        self.hint = hint


class ArchscaleRuntimeError(ArchscaleError):
    """The request was valid but could not be carried out here (exit code 1)."""

    exit_code = 1


class Interrupted(ArchscaleRuntimeError):
    """The user stopped the command (Ctrl-C); the shell's convention for SIGINT is exit code 130."""

    exit_code = 130


def one_line(message: str, limit: int = 300) -> str:
    """A stored failure message as one short line: a traceback's last line (the error itself), whitespace
    folded, cut at ``limit`` characters."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = " ".join((lines[-1] if lines and lines[0].startswith("Traceback") else " ".join(lines)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
