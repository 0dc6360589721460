"""The Azure Retail Prices API (public, unauthenticated) over ``requests``: filtered queries, paging, errors.

``GET {base}?api-version=2023-01-01-preview&$filter=...`` answers ``{"Items": [...], "NextPageLink":
..., "Count": n}``; the client follows ``NextPageLink`` (absolute) until it is empty. The preview
api-version is the one that carries ``savingsPlan`` on consumption items.

Filter syntax as the service accepts it: ``eq`` comparisons joined by ``and`` / ``or`` with
parentheses; it rejects ``in (...)`` and ``not(...)`` with HTTP 400 ("Invalid OData parameters
supplied"), values are case-sensitive, and long ``or`` chains are reported refused, so a region's
types are asked in chunks of ``TYPES_PER_QUERY`` (one query per region for a typical fleet).

Real use: ``RetailPricesClient()``; an emulator or proxy: ``RetailPricesClient(base_url=...)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import requests

from providers.errors import AuthError, NotFound, ProviderError, Throttled

log = logging.getLogger(__name__)

RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
TYPES_PER_QUERY = 10
_RETRY_STATUSES = {429, 500, 502, 503, 504}


def vm_filter(region: str, arm_sku_names: Sequence[str]) -> str:
    """The $filter for Linux/Windows consumption and reservation prices of some VM sizes in one region."""
    skus = " or ".join(f"armSkuName eq {_literal(s)}" for s in arm_sku_names)
    return (f"serviceName eq 'Virtual Machines' and armRegionName eq {_literal(region)} "
            f"and (priceType eq 'Consumption' or priceType eq 'Reservation') and ({skus})")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class RetailPricesClient:
    """Queries with retries on 429/5xx (``attempts`` in all, exponential ``backoff``), counting calls.

    ``session`` is the injection point (default: a new ``requests.Session``); ``sleep`` too, so tests
    need not wait. Items are cached per (region, types): one pass per region per run.
    """

    def __init__(
        self,
        base_url: str = RETAIL_PRICES_URL,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        attempts: int = 3,
        backoff: float = 1.0,
        max_pages: int = 200,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._max_pages = max_pages
        self._sleep = sleep
        self._cache: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
        self._failed: dict[tuple[str, tuple[str, ...]], ProviderError] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def vm_items(self, region: str, arm_sku_names: Sequence[str]) -> list[dict[str, Any]]:
        """Every price item of these VM sizes in ``region`` (all pages, all chunks); items or failure cached."""
        names = tuple(sorted(set(arm_sku_names)))
        key = (region, names)
        with self._lock:
            if key in self._failed:
                raise self._failed[key]  # asked again in the same run (quotes, then commitments)
            if key not in self._cache:
                items: list[dict[str, Any]] = []
                try:
                    for start in range(0, len(names), TYPES_PER_QUERY):
                        items.extend(self.query(vm_filter(region, names[start:start + TYPES_PER_QUERY])))
                except ProviderError as exc:
                    self._failed[key] = exc
                    raise
                self._cache[key] = items
            return self._cache[key]

    def query(self, filter_expr: str) -> list[dict[str, Any]]:
        """All items matching an OData ``$filter``, following ``NextPageLink``."""
        items: list[dict[str, Any]] = []
        url: str | None = self.base_url
        params: dict[str, str] | None = {"api-version": API_VERSION, "$filter": filter_expr}
        pages = 0
        while url:
            pages += 1
            if pages > self._max_pages:
                raise ProviderError(f"azure retail prices: more than {self._max_pages} pages from {self.base_url}",
                                    hint="narrow the filter")
            body = self._get(url, params)
            page = body.get("Items")
            if not isinstance(page, list):
                raise ProviderError(f"azure retail prices: no Items in the answer from {_short(url)}",
                                    hint="check the base URL")
            items.extend(i for i in page if isinstance(i, dict))
            url, params = body.get("NextPageLink") or None, None  # the link carries the query
        log.info("event=retail_prices_listed items=%d pages=%d where=%s", len(items), pages, self.base_url)
        return items

    def _get(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        for attempt in range(1, self._attempts + 1):
            self.calls["retail-prices.GET"] += 1
            try:
                resp = self._session.get(url, params=params, timeout=self._timeout)
            except requests.exceptions.RequestException as exc:
                if attempt < self._attempts:
                    self._pause(attempt, None)
                    continue
                raise ProviderError(f"azure retail prices: cannot reach {_short(url)} ({type(exc).__name__})",
                                    hint="check network access and the base URL") from exc
            if resp.status_code in _RETRY_STATUSES and attempt < self._attempts:
                self._pause(attempt, resp.headers.get("Retry-After"))
                continue
            if resp.status_code >= 400:
                raise _error(resp, url)
            try:
                body = resp.json()
            except ValueError as exc:
                raise ProviderError(f"azure retail prices: unreadable answer from {_short(url)}",
                                    hint="check the base URL") from exc
            if not isinstance(body, dict):
                raise ProviderError(f"azure retail prices: unexpected answer from {_short(url)}",
                                    hint="check the base URL")
            return body
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = self._backoff * 2 ** (attempt - 1)
        if retry_after and retry_after.isdigit():
            delay = min(max(delay, float(retry_after)), 60.0)
        self._sleep(delay)


def _error(resp: requests.Response, url: str) -> ProviderError:
    message = ""
    try:
        body = resp.json()
        err = body.get("Error") or body.get("error") or {}
        message = str(err.get("Message") or err.get("message") or "") if isinstance(err, dict) else str(err)
    except ValueError:
        message = resp.text[:200]
    text = f"azure retail prices: HTTP {resp.status_code} from {_short(url)}" + (
        f": {message.strip().splitlines()[0][:300]}" if message.strip() else "")
    if resp.status_code == 429:
        return Throttled(text, hint="retries exhausted; try later", code="429")
    if resp.status_code in (401, 403):
        return AuthError(text, hint="the Retail Prices API needs no credentials: check a proxy in between",
                         code=str(resp.status_code))
    if resp.status_code == 404:
        return NotFound(text, hint="check the base URL", code="404")
    return ProviderError(text, code=str(resp.status_code))


def _short(url: str) -> str:
    """The URL without its query (filters are long and named elsewhere in the log)."""
    return url.split("?", 1)[0]
