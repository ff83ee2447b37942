"""The SSB client: fetch tables politely, with caching and resumption."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vekst.data.jsonstat import Dataset, JsonStatError, parse, parse_metadata
from vekst.data.ssb.cache import DiskCache
from vekst.data.ssb.errors import (
    SsbError,
    SsbHttpError,
    TransportError,
)
from vekst.data.ssb.limits import DEFAULT_BASE_URL, DEFAULT_MAX_CELLS, PUBLISHED_CELL_LIMIT
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
    _retry_after_seconds,
)
from vekst.data.ssb_tables import TableSpec
from vekst.io import settings_from

#: Called after each chunk: (table key, chunks done, chunks in total).
ProgressHook = Callable[[str, int, int], None]


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


@dataclass(frozen=True)
class ClientSettings:
    """Where an :class:`SsbClient` fetches from, how politely, and what it caches.

    Attributes
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

    base_url: str = DEFAULT_BASE_URL
    lang: str = "no"
    transport: Transport | None = None
    clock: Clock | None = None
    cache_dir: Path | str | None = None
    rate_limiter: RateLimiter | None = None
    retry: RetryPolicy | None = None
    max_cells: int = DEFAULT_MAX_CELLS
    metadata_max_age: float | None = 24 * 3600.0
    refresh: bool = False


class SsbClient:
    """Fetch SSB tables politely, with caching and resumption.

    Parameters
    ----------
    settings
        Source, transport, cache and limits (:class:`ClientSettings`); default its
        defaults.
    **overrides
        Fields of :class:`ClientSettings` by name, e.g. ``SsbClient(cache_dir="cache",
        lang="en")``; an unknown name is a ``TypeError`` naming it.
    """

    def __init__(self, settings: ClientSettings | None = None, **overrides: Any) -> None:
        s = settings_from(ClientSettings, settings, overrides, "SsbClient")
        if s.max_cells > PUBLISHED_CELL_LIMIT:
            raise ValueError(
                f"max_cells={s.max_cells} exceeds SSB's limit of {PUBLISHED_CELL_LIMIT} cells"
            )
        self.settings = s
        self.base_url = s.base_url.rstrip("/")
        self.lang = s.lang
        self.transport: Transport = s.transport or UrllibTransport()
        self.clock: Clock = s.clock or SystemClock()
        self.cache = DiskCache(s.cache_dir) if s.cache_dir is not None else None
        self.rate_limiter = s.rate_limiter or RateLimiter(clock=self.clock)
        self.retry = s.retry or RetryPolicy()
        self.max_cells = s.max_cells
        self.metadata_max_age = s.metadata_max_age
        self.refresh = s.refresh
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
