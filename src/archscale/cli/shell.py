"""The command line's one error convention, applied once around every command.

A user's mistake (an :class:`~archscale.errors.ArchscaleError`, or a bad option Click catches) prints one
line, ``error: …``, on stderr and exits with 2; a failure while carrying out a valid request exits with 1;
an optional dependency that is missing names the extra to install. No traceback for any of these: a
traceback means a bug in archscale.
"""

from __future__ import annotations

import errno
import sys
from typing import Any

import typer
import typer.core

from archscale.errors import ArchscaleError

EXTRAS = {"transformers": "hf", "lm_eval": "eval", "accelerate": "eval", "ray": "ray", "tensorboard": "tb",
          "wandb": "wandb", "datasets": "hf"}  # fmt: skip
FILESYSTEM_HINT = "pass another path, or fix this one, and re-run the same command"
FILESYSTEM_HINTS = {
    errno.ENOSPC: "free space on that filesystem (or write elsewhere) and re-run; nothing finished was lost",
    errno.EROFS: "the filesystem is read-only: pass a writable path",
    errno.EEXIST: "a file is in the way: pass a folder that does not exist or is a folder",
    errno.ENOTDIR: "a file is in the way: pass a folder that does not exist or is a folder",
}


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {' '.join(message.split())}", err=True)  # one line, however the cause was laid out
    sys.exit(code)


class ArchscaleGroup(typer.core.TyperGroup):
    """The root command group: runs the command, then turns the errors above into one line and an exit code."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as error:  # Click's usage errors, as Typer vendors them
            if type(error).__name__ == "NoArgsIsHelpError":  # a bare group: its help, not an error
                typer.echo(error.format_message())
                sys.exit(error.exit_code)
            context = getattr(error, "ctx", None)
            hint = f" (see `{context.command_path} --help`)" if context is not None else ""
            _fail(error.format_message() + hint, error.exit_code)
        except (typer.Abort, KeyboardInterrupt):  # Ctrl-C: what was written is kept; a re-run resumes
            _fail("interrupted; re-run the same command to resume", 130)
        except ArchscaleError as error:
            _fail(str(error), error.exit_code)
        except OSError as error:  # the filesystem refused (full, read-only, not a folder): say where and why
            where = f"{error.filename}: " if error.filename else ""
            _fail(
                f"{where}{error.strerror or error}; {FILESYSTEM_HINTS.get(error.errno, FILESYSTEM_HINT)}", 1
            )
        except ModuleNotFoundError as error:
            package = (error.name or "").split(".")[0]
            if package not in EXTRAS:
                raise
            _fail(f"this command needs {package}: pip install 'archscale[{EXTRAS[package]}]'", 1)
        sys.exit(code if isinstance(code, int) else 0)
