"""The error every ingest layer raises when a source as a whole cannot be read."""

from __future__ import annotations


class SourceError(RuntimeError):
    """The source itself cannot be read (missing, wrong format, unsafe archive): ingest exits non-zero."""
