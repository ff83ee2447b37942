"""Limits published by SSB and the client's defaults below them."""

DEFAULT_BASE_URL = "https://data.ssb.no/api/pxwebapi/v2"
#: Cells per extraction allowed by SSB (documented; larger queries get HTTP 403).
PUBLISHED_CELL_LIMIT = 800_000
#: Requests per 60 seconds allowed by SSB per IP address (documented; more get HTTP 429).
PUBLISHED_RATE_LIMIT = 30
#: Cells per chunk the client asks for by default: a margin below the published limit.
DEFAULT_MAX_CELLS = 750_000
