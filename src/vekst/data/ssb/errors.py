"""Errors talking to SSB."""

from __future__ import annotations

from vekst.errors import SourceError


class SsbError(SourceError):
    """Base class for errors talking to SSB."""


class TransportError(SsbError):
    """The request never got an HTTP answer (DNS, connection, timeout)."""


class SsbHttpError(SsbError):
    """SSB answered with an error status, or kept failing until the client gave up.

    Attributes
    ----------
    table_id, status, url
        The table, the last HTTP status (``None`` for network errors) and the URL.
    """

    def __init__(self, message: str, *, table_id: str, status: int | None, url: str) -> None:
        super().__init__(message)
        self.table_id = table_id
        self.status = status
        self.url = url


class TableSpecError(SsbError):
    """A table spec in :mod:`vekst.data.ssb_tables` no longer matches the table at SSB."""


class CacheCorruptionError(SsbError):
    """A cache file failed its checksum or is not valid JSON (it is deleted and refetched)."""
