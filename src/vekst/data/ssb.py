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

HTTP goes through a :class:`Transport` (``send(request) -> response``);
:class:`UrllibTransport` uses the standard library, tests inject a stub. Time goes through a
:class:`Clock` so that tests can use a fake one.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import hashlib
import json
import math
import re
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Protocol

import pandas as pd

from vekst.data.jsonstat import Dataset, Dimension, JsonStatError, parse, parse_metadata
from vekst.data.ssb_tables import CONTENTS_VARIABLE, Select, TableSpec
from vekst.errors import SourceError
from vekst.io import atomic_write

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_CELLS",
    "PUBLISHED_CELL_LIMIT",
    "PUBLISHED_RATE_LIMIT",
    "CacheCorruptionError",
    "Clock",
    "DiskCache",
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
]

DEFAULT_BASE_URL = "https://data.ssb.no/api/pxwebapi/v2"
#: Cells per extraction allowed by SSB (documented; larger queries get HTTP 403).
PUBLISHED_CELL_LIMIT = 800_000
#: Requests per 60 seconds allowed by SSB per IP address (documented; more get HTTP 429).
PUBLISHED_RATE_LIMIT = 30
#: Cells per chunk the client asks for by default: a margin below the published limit.
DEFAULT_MAX_CELLS = 750_000

#: Called after each chunk: (table key, chunks done, chunks in total).
ProgressHook = Callable[[str, int, int], None]


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


# --------------------------------------------------------------------------------------
# HTTP and time
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """An HTTP request."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class Response:
    """An HTTP response (headers with any capitalisation)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """Header ``name`` looked up case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


class Transport(Protocol):
    """Sends one request and returns the response; raises :class:`TransportError` when no
    HTTP answer came back. Error statuses are returned, not raised."""

    def send(self, request: Request) -> Response:
        """Send ``request``."""
        ...


class UrllibTransport:
    """:class:`Transport` over :mod:`urllib.request` (standard library only).

    Parameters
    ----------
    timeout
        Seconds to wait for a response.
    """

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout

    def send(self, request: Request) -> Response:
        """Send ``request``; gzip-encoded bodies are decompressed."""
        http_request = urllib.request.Request(
            request.url, data=request.body, headers=dict(request.headers), method=request.method
        )
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as answer:
                headers = dict(answer.headers.items())
                body = answer.read()
                status = answer.status
        except urllib.error.HTTPError as error:
            headers = dict(error.headers.items()) if error.headers else {}
            body = error.read() or b""
            status = error.code
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            raise TransportError(f"{request.method} {request.url}: {error}") from error
        encoding = next((v for k, v in headers.items() if k.lower() == "content-encoding"), "")
        if "gzip" in encoding.lower():
            body = gzip.decompress(body)
        return Response(status=status, headers=headers, body=body)


class Clock(Protocol):
    """Time source: a monotonic clock for intervals, wall time for ``Retry-After`` dates."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """See :meth:`Clock.monotonic`."""
        return time.monotonic()

    def time(self) -> float:
        """See :meth:`Clock.time`."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """See :meth:`Clock.sleep`."""
        if seconds > 0:
            time.sleep(seconds)


class RateLimiter:
    """At most ``max_requests`` requests in any window of ``period`` seconds.

    A sliding log rather than a token bucket: a bucket that starts full lets a burst of
    ``max_requests`` plus the refill through within one window, which breaks a
    "30 per 60 seconds" rule.

    Parameters
    ----------
    max_requests, period
        The window rule (default 25 per 60 s; SSB allows 30).
    min_interval
        Least spacing between two requests in seconds.
    clock
        Time source (a fake one in tests).
    """

    def __init__(
        self,
        max_requests: int = 25,
        period: float = 60.0,
        min_interval: float = 0.5,
        clock: Clock | None = None,
    ) -> None:
        if max_requests < 1 or period <= 0:
            raise ValueError("max_requests must be >= 1 and period > 0")
        self.max_requests = max_requests
        self.period = period
        self.min_interval = min_interval
        self.clock = clock or SystemClock()
        self._sent: deque[float] = deque()

    def _wait_needed(self, now: float) -> float:
        while self._sent and now - self._sent[0] >= self.period:
            self._sent.popleft()
        wait = 0.0
        if len(self._sent) >= self.max_requests:
            wait = self._sent[0] + self.period - now
        if self._sent and self.min_interval > 0:
            wait = max(wait, self._sent[-1] + self.min_interval - now)
        return wait

    def acquire(self) -> float:
        """Block until a request may be sent, record it, and return the seconds waited."""
        waited = 0.0
        now = self.clock.monotonic()
        wait = self._wait_needed(now)
        while wait > 0:
            self.clock.sleep(wait)
            waited += wait
            now = self.clock.monotonic()
            wait = self._wait_needed(now)
        self._sent.append(now)
        return waited


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before retrying.

    Attributes
    ----------
    max_retries
        Retries after the first attempt.
    backoff
        First back-off in seconds; doubled on each retry.
    max_delay
        Cap on one wait (also on ``Retry-After``).
    retry_statuses
        HTTP statuses worth retrying (rate limit and server errors).
    """

    max_retries: int = 5
    backoff: float = 2.0
    max_delay: float = 120.0
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        return min(self.max_delay, self.backoff * 2**attempt)


def _retry_after_seconds(response: Response | None, now: float) -> float | None:
    if response is None:
        return None
    value = response.header("Retry-After")
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return when.timestamp() - now
    return None


# --------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda temp: Path(temp).write_bytes(data))


class DiskCache:
    """Response bodies on disk, one file per key with a SHA-256 sidecar.

    ``<root>/<folder>/<name>.json`` holds the body, ``<name>.json.sha256`` its digest. The
    body is written first and the sidecar second, each atomically, so an interrupted
    write leaves either nothing or a body without a valid sidecar, which :meth:`get`
    treats as corrupt.

    Parameters
    ----------
    root
        Cache folder (created on demand).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        #: Paths found corrupt (and removed) since the cache was opened.
        self.corrupt: list[Path] = []

    def path(self, folder: str, name: str) -> Path:
        """Where the body for ``folder``/``name`` lives."""
        return self.root / folder / f"{name}.json"

    def get(self, folder: str, name: str, *, max_age: float | None = None) -> bytes | None:
        """Return the cached body, or ``None`` when absent, too old, or corrupt.

        A corrupt entry (checksum mismatch, missing sidecar, invalid JSON) is deleted and
        recorded in :attr:`corrupt`, so that the caller fetches it again.
        """
        path = self.path(folder, name)
        sidecar = path.with_name(path.name + ".sha256")
        if not path.exists():
            return None
        if max_age is not None and time.time() - path.stat().st_mtime > max_age:
            return None
        try:
            body = path.read_bytes()
            expected = sidecar.read_text().strip() if sidecar.exists() else None
            if expected != hashlib.sha256(body).hexdigest():
                raise CacheCorruptionError(f"{path}: checksum does not match {sidecar.name}")
            json.loads(body)
        except (CacheCorruptionError, ValueError, OSError):
            self.corrupt.append(path)
            for stale in (path, sidecar):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
            return None
        return body

    def put(self, folder: str, name: str, body: bytes) -> Path:
        """Store ``body`` atomically with its checksum and return its path."""
        path = self.path(folder, name)
        _atomic_write(path, body)
        _atomic_write(
            path.with_name(path.name + ".sha256"), hashlib.sha256(body).hexdigest().encode()
        )
        return path


# --------------------------------------------------------------------------------------
# Query planning
# --------------------------------------------------------------------------------------


def plan_chunks(
    dimensions: Sequence[tuple[str, Sequence[str]]],
    max_cells: int,
    split_order: Sequence[str] = (),
) -> list[dict[str, tuple[str, ...]]]:
    """Split a query into chunks of at most ``max_cells`` cells.

    Dimensions are split in ``split_order`` (others are never split): the first one into
    consecutive runs of values as long as the rest allows, the next one only when even a
    single value of the first is too much, and so on. Runs start at the first value, so
    appending values (a new year) changes only the last chunk and cached chunks stay valid.

    Parameters
    ----------
    dimensions
        ``(variable, value codes)`` in query order.
    max_cells
        Most cells per chunk.
    split_order
        Variables that may be split, most preferred first.

    Returns
    -------
    list of dict
        Per chunk, the value codes of every variable (in ``dimensions`` order). Together
        the chunks cover every cell exactly once.

    Raises
    ------
    ValueError
        If no split fits (the unsplittable variables alone exceed ``max_cells``).
    """
    if max_cells < 1:
        raise ValueError("max_cells must be at least 1")
    sizes = {name: len(codes) for name, codes in dimensions}
    if any(size == 0 for size in sizes.values()):
        return []
    splittable = [name for name in split_order if name in sizes]
    run_length = dict(sizes)
    if math.prod(sizes.values()) > max_cells:
        undecided = list(splittable)
        decided_product = 1
        fixed = math.prod(sizes[name] for name in sizes if name not in splittable)
        while undecided:
            name = undecided.pop(0)
            rest = fixed * math.prod(sizes[other] for other in undecided)
            room = max_cells // (decided_product * rest) if decided_product * rest else 0
            if room >= sizes[name]:
                break
            run_length[name] = max(1, room)
            decided_product *= run_length[name]
            if room >= 1:
                break
        total = math.prod(run_length.values())
        if total > max_cells:
            raise ValueError(
                f"cannot split the query below {max_cells} cells: one value of each of "
                f"{splittable} still gives {total} cells; allow more variables in split_order"
            )
    runs: list[list[tuple[str, ...]]] = []
    for name, codes in dimensions:
        step = run_length[name]
        codes = tuple(codes)
        runs.append([codes[i : i + step] for i in range(0, len(codes), step)])
    names = [name for name, _ in dimensions]
    return [dict(zip(names, combo, strict=True)) for combo in product(*runs)]


# --------------------------------------------------------------------------------------
# Resolving a spec against metadata
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedQuery:
    """A :class:`TableSpec` matched against the table's current metadata.

    Attributes
    ----------
    spec
        The spec.
    dimensions
        ``(variable, value codes)`` for every variable in the query, in table order.
    codelists
        Code list per variable where the spec names one.
    contents
        ``ContentsCode`` value code -> column name.
    eliminated
        Variables left out of the query (SSB returns their elimination value).
    variables
        Spec variable name -> the table's variable code (they differ when a variable was
        found by label).
    """

    spec: TableSpec
    dimensions: tuple[tuple[str, tuple[str, ...]], ...]
    codelists: Mapping[str, str]
    contents: Mapping[str, str]
    eliminated: tuple[str, ...]
    variables: Mapping[str, str]

    @property
    def n_cells(self) -> int:
        """Cells in the whole query."""
        return math.prod(len(codes) for _, codes in self.dimensions)

    def codes(self, variable: str) -> tuple[str, ...]:
        """Selected value codes of ``variable`` (spec or table name)."""
        actual = self.variables.get(variable, variable)
        for name, codes in self.dimensions:
            if name == actual:
                return codes
        raise KeyError(f"{variable!r} is not in the query for table {self.spec.table_id}")


def _period_year(code: str, unit: str) -> int | None:
    pattern = r"(\d{4})" if unit == "year" else r"(\d{4})K[1-4]"
    match = re.fullmatch(pattern, code)
    return int(match.group(1)) if match else None


def _describe_values(dim: Dimension, limit: int = 12) -> str:
    pairs = [f"{c} ({lab})" for c, lab in zip(dim.codes, dim.labels, strict=True)]
    more = f" ... and {len(pairs) - limit} more" if len(pairs) > limit else ""
    return ", ".join(pairs[:limit]) + more


def _find_variable(spec: TableSpec, meta: Dataset, name: str, label: str | None) -> Dimension:
    if name in meta.ids:
        return meta.dimension(name)
    if label is not None:
        for dim in meta.dimensions:
            if dim.label.casefold() == label.casefold():
                return dim
    variables = ", ".join(f"{d.id} ({d.label})" for d in meta.dimensions)
    raise TableSpecError(
        f"table {spec.table_id} ({spec.key}): has no variable {name!r}"
        + (f" or variable labelled {label!r}" if label else "")
        + f"; it has {variables}. Update the spec in src/vekst/data/ssb_tables.py."
    )


def _select_values(spec: TableSpec, dim: Dimension, select: Select) -> tuple[str, ...]:
    if select.codelist is not None:
        # A code list has its own codes (e.g. "K-3103"), not in the table's value list.
        if not select.codes:
            raise TableSpecError(
                f"table {spec.table_id} ({spec.key}): variable {dim.id!r} uses code list "
                f"{select.codelist!r}; give its value codes explicitly in ssb_tables.py."
            )
        return tuple(select.codes)
    if select.codes:
        missing = [code for code in select.codes if code not in dim.codes]
        if missing:
            raise TableSpecError(
                f"table {spec.table_id} ({spec.key}): variable {dim.id!r} has no value(s) "
                f"{missing}; it has {_describe_values(dim)}. Update the spec in "
                "src/vekst/data/ssb_tables.py."
            )
        return tuple(select.codes)
    if select.every:
        chosen = dim.codes
    elif select.pattern is not None:
        chosen = tuple(code for code in dim.codes if re.fullmatch(select.pattern, code))
    else:
        regex = re.compile(select.label_pattern or "", re.IGNORECASE)
        chosen = tuple(
            code for code, lab in zip(dim.codes, dim.labels, strict=True) if regex.search(lab)
        )
    if not chosen:
        rule = select.pattern or select.label_pattern
        raise TableSpecError(
            f"table {spec.table_id} ({spec.key}): no value of variable {dim.id!r} matches "
            f"{rule!r}; it has {_describe_values(dim)}. Update the spec in "
            "src/vekst/data/ssb_tables.py."
        )
    return tuple(chosen)


def resolve_query(
    spec: TableSpec, meta: Dataset, first_year: int, last_year: int | None = None
) -> ResolvedQuery:
    """Match ``spec`` against ``meta`` and pick the periods from ``first_year`` on.

    Parameters
    ----------
    spec
        The table spec.
    meta
        The table's metadata (from :meth:`SsbClient.metadata`).
    first_year, last_year
        Calendar years to fetch; ``last_year=None`` means the latest SSB has.

    Returns
    -------
    ResolvedQuery

    Raises
    ------
    TableSpecError
        If a variable or value is gone, no period falls in the range, or a variable the
        spec does not mention cannot be eliminated; the message says what the table has now.
    """
    chosen: dict[str, tuple[str, ...]] = {}
    codelists: dict[str, str] = {}
    names: dict[str, str] = {}
    eliminated: list[str] = []
    for select in spec.all_selections():
        dim = _find_variable(spec, meta, select.variable, select.variable_label)
        names[select.variable] = dim.id
        if select.eliminate:
            if dim.elimination is False:
                raise TableSpecError(
                    f"table {spec.table_id} ({spec.key}): variable {dim.id!r} cannot be "
                    "eliminated (left out of the query); select its values in "
                    "src/vekst/data/ssb_tables.py instead."
                )
            eliminated.append(dim.id)
            continue
        if select.codelist:
            codelists[dim.id] = select.codelist
        chosen[dim.id] = _select_values(spec, dim, select)

    contents_dim = _find_variable(spec, meta, CONTENTS_VARIABLE, "statistikkvariabel")
    names[CONTENTS_VARIABLE] = contents_dim.id
    contents: dict[str, str] = {}
    for content in spec.contents:
        if content.code is not None:
            if content.code not in contents_dim.codes:
                raise TableSpecError(
                    f"table {spec.table_id} ({spec.key}): {contents_dim.id} has no value "
                    f"{content.code!r} (for {content.column}); it has "
                    f"{_describe_values(contents_dim)}. Update the spec in "
                    "src/vekst/data/ssb_tables.py."
                )
            contents[content.code] = content.column
            continue
        regex = re.compile(content.label_pattern or "", re.IGNORECASE)
        match = next(
            (
                c
                for c, lab in zip(contents_dim.codes, contents_dim.labels, strict=True)
                if regex.search(lab)
            ),
            None,
        )
        if match is None:
            raise TableSpecError(
                f"table {spec.table_id} ({spec.key}): no {contents_dim.id} label matches "
                f"{content.label_pattern!r}; it has {_describe_values(contents_dim)}. Update "
                "the spec in src/vekst/data/ssb_tables.py."
            )
        contents[match] = content.column
    chosen[contents_dim.id] = tuple(contents)

    time_dim = _find_variable(spec, meta, spec.time_variable, None)
    names[spec.time_variable] = time_dim.id
    periods = []
    for code in time_dim.codes:
        year = _period_year(code, spec.time_unit)
        if year is not None and year >= first_year and (last_year is None or year <= last_year):
            periods.append(code)
    if not periods:
        known = [c for c in time_dim.codes if _period_year(c, spec.time_unit) is not None]
        span = f"{known[0]}-{known[-1]}" if known else "no periods in the expected format"
        raise TableSpecError(
            f"table {spec.table_id} ({spec.key}): no {spec.time_unit} between {first_year} "
            f"and {last_year or 'the latest'}; the table covers {span}."
        )
    chosen[time_dim.id] = tuple(periods)

    for dim in meta.dimensions:
        if dim.id in chosen or dim.id in eliminated:
            continue
        if dim.elimination is False:
            raise TableSpecError(
                f"table {spec.table_id} ({spec.key}): variable {dim.id!r} ({dim.label}) must "
                f"be selected but the spec does not mention it; values: "
                f"{_describe_values(dim)}. Add a Select to src/vekst/data/ssb_tables.py."
            )
        eliminated.append(dim.id)

    dimensions = tuple((dim.id, chosen[dim.id]) for dim in meta.dimensions if dim.id in chosen)
    return ResolvedQuery(
        spec=spec,
        dimensions=dimensions,
        codelists=codelists,
        contents=contents,
        eliminated=tuple(eliminated),
        variables=names,
    )


# --------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------


@dataclass
class TableResult:
    """A fetched table.

    Attributes
    ----------
    frame
        Tidy frame: one string column per variable in the query (value codes), ``value``,
        ``status`` (SSB symbol: ``.``, ``..`` or ``:``) and ``reason``.
    metadata
        The table's metadata (labels of every value).
    query
        The resolved query (selected codes, content columns).
    chunks, fetched
        Chunks in the plan, and how many of them were fetched (not read from the cache).
    """

    frame: pd.DataFrame
    metadata: Dataset
    query: ResolvedQuery
    chunks: int = 0
    fetched: int = 0


class SsbClient:
    """Fetch SSB tables politely, with caching and resumption.

    Parameters
    ----------
    base_url
        PxWebApi 2 root.
    lang
        ``"no"`` or ``"en"`` (labels only; codes are the same).
    transport
        HTTP transport; :class:`UrllibTransport` by default.
    clock
        Time source for the rate limiter and back-off.
    cache_dir
        Folder for cached responses; ``None`` disables the cache.
    rate_limiter
        Defaults to :class:`RateLimiter` with the same clock.
    retry
        Retry policy.
    max_cells
        Most cells per request (SSB's limit is 800,000).
    metadata_max_age
        Seconds a cached metadata document is trusted (new periods appear in metadata);
        ``None`` trusts it forever.
    refresh
        Ignore the cache (fetch metadata and every chunk again, then cache them).
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        lang: str = "no",
        transport: Transport | None = None,
        clock: Clock | None = None,
        cache_dir: Path | str | None = None,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        max_cells: int = DEFAULT_MAX_CELLS,
        metadata_max_age: float | None = 24 * 3600.0,
        refresh: bool = False,
    ) -> None:
        if max_cells > PUBLISHED_CELL_LIMIT:
            raise ValueError(
                f"max_cells={max_cells} exceeds SSB's limit of {PUBLISHED_CELL_LIMIT} cells"
            )
        self.base_url = base_url.rstrip("/")
        self.lang = lang
        self.transport: Transport = transport or UrllibTransport()
        self.clock: Clock = clock or SystemClock()
        self.cache = DiskCache(cache_dir) if cache_dir is not None else None
        self.rate_limiter = rate_limiter or RateLimiter(clock=self.clock)
        self.retry = retry or RetryPolicy()
        self.max_cells = max_cells
        self.metadata_max_age = metadata_max_age
        self.refresh = refresh
        #: Requests sent (attempts included), for reporting.
        self.requests_sent = 0

    # -- HTTP ---------------------------------------------------------------------------

    def _headers(self, json_body: bool) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "User-Agent": f"vekst/{_package_version()} (Python urllib)",
        }
        if json_body:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return headers

    def send(self, request: Request, *, table_id: str) -> Response:
        """Send ``request`` within the rate limit, retrying per the policy.

        Returns
        -------
        Response
            A 2xx response.

        Raises
        ------
        SsbHttpError
            On a status that is not worth retrying (400, 403, 404, ...) or when retries
            run out; the message names the table, the status and what to do.
        """
        last_status: int | None = None
        last_detail = ""
        attempts = self.retry.max_retries + 1
        for attempt in range(attempts):
            self.rate_limiter.acquire()
            self.requests_sent += 1
            response: Response | None = None
            try:
                response = self.transport.send(request)
            except TransportError as error:
                last_status, last_detail = None, str(error)
            else:
                if 200 <= response.status < 300:
                    return response
                last_status = response.status
                last_detail = response.body[:300].decode("utf-8", "replace").strip()
                if response.status not in self.retry.retry_statuses:
                    raise SsbHttpError(
                        _http_advice(table_id, response.status, last_detail),
                        table_id=table_id,
                        status=response.status,
                        url=request.url,
                    )
            if attempt + 1 < attempts:
                wait = self.retry.delay(attempt, _retry_after_seconds(response, self.clock.time()))
                self.clock.sleep(wait)
        status_text = f"HTTP {last_status}" if last_status is not None else "no HTTP answer"
        raise SsbHttpError(
            f"table {table_id}: gave up after {attempts} attempts; last answer {status_text}"
            f"{': ' + last_detail if last_detail else ''}. SSB may be down or rate-limiting "
            "this address (30 requests per minute, shared by everyone on it); run the same "
            "command again later: chunks already fetched are cached.",
            table_id=table_id,
            status=last_status,
            url=request.url,
        )

    # -- metadata -----------------------------------------------------------------------

    def metadata(self, table_id: str) -> Dataset:
        """Return the metadata of ``table_id`` (cached for ``metadata_max_age`` seconds).

        Raises
        ------
        SsbHttpError
            If SSB does not know the table (HTTP 404) or keeps failing.
        """
        name = f"metadata-{self.lang}"
        body = None
        if self.cache is not None and not self.refresh:
            body = self.cache.get(table_id, name, max_age=self.metadata_max_age)
        if body is None:
            url = (
                f"{self.base_url}/tables/{table_id}/metadata"
                f"?lang={self.lang}&outputFormat=json-stat2"
            )
            response = self.send(Request("GET", url, self._headers(False)), table_id=table_id)
            body = response.body
            meta = self._parse(body, table_id, metadata=True)
            if self.cache is not None:
                self.cache.put(table_id, name, body)
            return meta
        return self._parse(body, table_id, metadata=True)

    @staticmethod
    def _parse(body: bytes, table_id: str, *, metadata: bool = False) -> Dataset:
        source = f"SSB table {table_id} {'metadata' if metadata else 'data'}"
        try:
            return parse_metadata(body, source=source) if metadata else parse(body, source=source)
        except JsonStatError as error:
            raise SsbError(f"{error} (table {table_id})") from error

    # -- data ---------------------------------------------------------------------------

    def resolve(
        self, spec: TableSpec, first_year: int, last_year: int | None = None
    ) -> tuple[Dataset, ResolvedQuery]:
        """Fetch the metadata of ``spec`` and resolve its selection (see
        :func:`resolve_query`)."""
        meta = self.metadata(spec.table_id)
        return meta, resolve_query(spec, meta, first_year, last_year)

    def plan(self, query: ResolvedQuery) -> list[dict[str, tuple[str, ...]]]:
        """Chunks for ``query`` under this client's cell limit."""
        split = [query.variables.get(v, v) for v in query.spec.split_order]
        return plan_chunks(query.dimensions, self.max_cells, split)

    def _selection_body(self, query: ResolvedQuery, chunk: Mapping[str, Sequence[str]]) -> bytes:
        selection = []
        for name, codes in chunk.items():
            item: dict[str, object] = {"variableCode": name, "valueCodes": list(codes)}
            if name in query.codelists:
                item["codelist"] = query.codelists[name]
            selection.append(item)
        return json.dumps({"selection": selection}, ensure_ascii=False).encode("utf-8")

    def fetch_chunk(
        self, query: ResolvedQuery, chunk: Mapping[str, Sequence[str]]
    ) -> tuple[Dataset, bool]:
        """Fetch one chunk (from the cache when possible).

        Returns
        -------
        (Dataset, bool)
            The parsed chunk and whether it came over the network.
        """
        table_id = query.spec.table_id
        body_bytes = self._selection_body(query, chunk)
        key = hashlib.sha256(
            json.dumps(
                {"table": table_id, "lang": self.lang, "body": body_bytes.decode("utf-8")},
                sort_keys=True,
            ).encode()
        ).hexdigest()[:40]
        name = f"data-{key}"
        if self.cache is not None and not self.refresh:
            cached = self.cache.get(table_id, name)
            if cached is not None:
                return self._parse(cached, table_id), False
        url = f"{self.base_url}/tables/{table_id}/data?lang={self.lang}&outputFormat=json-stat2"
        response = self.send(
            Request("POST", url, self._headers(True), body_bytes), table_id=table_id
        )
        dataset = self._parse(response.body, table_id)
        if self.cache is not None:
            self.cache.put(table_id, name, response.body)
        return dataset, True

    def fetch_table(
        self,
        spec: TableSpec,
        *,
        first_year: int,
        last_year: int | None = None,
        progress: ProgressHook | None = None,
        chunk_filter: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> TableResult:
        """Fetch a whole table as one tidy frame.

        Parameters
        ----------
        spec
            What to fetch (see :mod:`vekst.data.ssb_tables`).
        first_year, last_year
            Calendar years; ``last_year=None`` is the latest SSB has.
        progress
            Called after each chunk with (table key, done, total).
        chunk_filter
            Applied to each chunk's frame before concatenation (e.g. to drop ``.`` cells
            of codes not in use, which keeps big matrices small).

        Returns
        -------
        TableResult

        Raises
        ------
        TableSpecError, SsbHttpError
            See :func:`resolve_query` and :meth:`send`.
        """
        meta, query = self.resolve(spec, first_year, last_year)
        chunks = self.plan(query)
        frames = []
        fetched = 0
        for done, chunk in enumerate(chunks, start=1):
            dataset, over_network = self.fetch_chunk(query, chunk)
            fetched += over_network
            frame = dataset.to_frame()
            if chunk_filter is not None:
                frame = chunk_filter(frame)
            frames.append(frame)
            if progress is not None:
                progress(spec.key, done, len(chunks))
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return TableResult(
            frame=frame, metadata=meta, query=query, chunks=len(chunks), fetched=fetched
        )


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("vekst")
    except Exception:  # not installed (source tree on sys.path)
        return "dev"


def _http_advice(table_id: str, status: int, detail: str) -> str:
    advice = {
        400: "the query does not fit the table (a variable or value code changed?); check "
        "the spec in src/vekst/data/ssb_tables.py against the table's metadata",
        403: f"the query is too large (SSB allows {PUBLISHED_CELL_LIMIT} cells); lower max_cells",
        404: "SSB does not know this table (discontinued or renumbered?); find its successor "
        "at https://data.ssb.no/api/pxwebapi/v2/tables?query=... and update "
        "src/vekst/data/ssb_tables.py",
    }.get(status, "unexpected answer from SSB")
    return f"table {table_id}: HTTP {status}: {advice}. SSB said: {detail or '(nothing)'}"
