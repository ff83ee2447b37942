"""A client for Statistics Norway's StatBank API (PxWebApi 2) returning tidy frames.

The API (``https://data.ssb.no/api/pxwebapi/v2``) serves table metadata at
``GET /tables/{id}/metadata`` and data at ``/tables/{id}/data`` (here: ``POST`` with a
JSON body ``{"selection": [{"variableCode": ..., "valueCodes": [...]}, ...]}``, because
long value lists overflow the roughly 2,100-character URL limit of ``GET``), both as
JSON-stat 2.0.

Limits published by SSB (user guide "API mot Statistikkbanken - brukerveiledning",
https://www.ssb.no/api/api-mot-statistikkbanken--brukerveiledning, and the PxWebApi 2 user
guide's "Response codes"):

* at most **800,000 data cells** per extraction (larger queries get HTTP 403);
* at most **30 queries per 60 seconds** per IP address (more get HTTP 429); the limit is
  shared by everyone behind the same address.

What the client does about them:

* :func:`plan_chunks` splits a query into chunks of at most ``max_cells`` cells (default
  :data:`DEFAULT_MAX_CELLS`, below the published limit), covering every cell exactly once;
* :class:`RateLimiter` keeps at most ``max_requests`` requests in any ``period`` seconds
  (default 25 per 60 s, below the published 30, leaving room for colleagues on the same
  address) and spaces requests by ``min_interval``;
* failed requests (HTTP 429 and 5xx, network errors) are retried with exponential back-off,
  honouring ``Retry-After``; :class:`SsbHttpError` names the table and status when it gives
  up;
* every chunk is cached on disk (:class:`DiskCache`: atomic writes, SHA-256 sidecar, a
  corrupt file is detected and fetched again), so an interrupted fetch resumes with the
  chunks it lacks.

Modules: :mod:`~vekst.data.ssb.client` (:class:`SsbClient`),
:mod:`~vekst.data.ssb.transport` (HTTP, time, rate limit, retries),
:mod:`~vekst.data.ssb.cache`, :mod:`~vekst.data.ssb.query` (chunk planning, resolving a
table spec against metadata), :mod:`~vekst.data.ssb.errors` and
:mod:`~vekst.data.ssb.limits`.

HTTP goes through a :class:`Transport` (``send(request) -> response``);
:class:`UrllibTransport` uses the standard library, tests inject a stub. Time goes through a
:class:`Clock` so that tests can use a fake one.
"""

from vekst.data.ssb.cache import DiskCache
from vekst.data.ssb.client import ClientSettings, ProgressHook, SsbClient, TableResult
from vekst.data.ssb.errors import (
    CacheCorruptionError,
    SsbError,
    SsbHttpError,
    TableSpecError,
    TransportError,
)
from vekst.data.ssb.limits import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_CELLS,
    PUBLISHED_CELL_LIMIT,
    PUBLISHED_RATE_LIMIT,
)
from vekst.data.ssb.query import ResolvedQuery, plan_chunks, resolve_query
from vekst.data.ssb.transport import (
    Clock,
    RateLimiter,
    Request,
    Response,
    RetryPolicy,
    SystemClock,
    Transport,
    UrllibTransport,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_CELLS",
    "PUBLISHED_CELL_LIMIT",
    "PUBLISHED_RATE_LIMIT",
    "CacheCorruptionError",
    "ClientSettings",
    "Clock",
    "DiskCache",
    "ProgressHook",
    "RateLimiter",
    "Request",
    "ResolvedQuery",
    "Response",
    "RetryPolicy",
    "SsbClient",
    "SsbError",
    "SsbHttpError",
    "SystemClock",
    "TableResult",
    "TableSpecError",
    "Transport",
    "TransportError",
    "UrllibTransport",
    "plan_chunks",
    "resolve_query",
]
