"""HTTP and time for the SSB client: requests, transports, clocks, the rate limiter and
the retry policy."""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import re
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from vekst.data.ssb.errors import TransportError


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
