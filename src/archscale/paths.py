"""Where archscale keeps what it builds (corpora, tokenisers, studies) unless told otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """Root for built artefacts: ``$ARCHSCALE_HOME`` or ``~/.cache/archscale``."""
    env = os.environ.get("ARCHSCALE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "archscale"


def shared_data_dir() -> Path | None:
    """The project's read-only public data sets (``../shared/data`` beside a checkout), if present."""
    env = os.environ.get("ARCHSCALE_SHARED_DATA")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[2]
    candidates += [repo.parent / "shared" / "data", repo / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), None)
