"""Errors of the data layer: each message names what is wrong and the command or argument that fixes it."""

from __future__ import annotations

from archscale.errors import ArchscaleError, ArchscaleRuntimeError


class DataError(ArchscaleError):
    """Bad input or state in the data layer (a field, a file or a corpus); the message says how to fix it."""


class CorpusNotFoundError(DataError, FileNotFoundError):
    """No complete corpus where one was asked for (missing, or a build that did not finish)."""


class CorruptShardError(DataError):
    """A token shard on disk does not match its recorded size or hash: it must be rebuilt, not read."""


class MissingToolError(DataError, ArchscaleRuntimeError):
    """A command-line tool needed to fetch or unpack a source package is not installed."""


class FetchError(DataError, ArchscaleRuntimeError):
    """A package registry client failed to fetch a source package."""
