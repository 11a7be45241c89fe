"""Where archscale keeps what it builds (corpora, tokenisers, studies), and how it writes a file safely."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def data_home() -> Path:
    """Root for built artefacts: ``$ARCHSCALE_HOME`` or ``~/.cache/archscale``."""
    env = os.environ.get("ARCHSCALE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "archscale"


def write_atomic(path: str | Path, content: str | bytes | Callable[[Path], object]) -> Path:
    """Write ``path`` through a temporary file beside it, fsynced and renamed into place, so that a full
    disk, a crash or Ctrl-C leaves the old file (or none), never a truncated one. ``content``: text, bytes,
    or a function that writes the temporary path it is given. The file's folder is created if missing."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            content(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:  # e.g. pyarrow's: name the file it was writing
            raise OSError(err.errno, err.strerror or " ".join(str(err).split()), str(path)) from None
        raise
    return path
