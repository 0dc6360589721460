"""A small local emulator of the Azure Retail Prices API (``prices.azure.com/api/retail/prices``).

Written from the public reference: ``GET /api/retail/prices?api-version=...&$filter=...`` answers
``{"BillingCurrency", "CustomerEntityId", "CustomerEntityType", "Items", "NextPageLink", "Count"}``;
pages are linked by an absolute ``NextPageLink`` carrying ``$skip`` (here: to this local server);
``savingsPlan`` is only returned with api-version 2023-01-01-preview. The ``$filter`` subset is parsed
honestly: ``field eq 'value'`` comparisons joined by ``and`` / ``or`` with parentheses; anything else
(``ne``, ``in``, ``not``, ``contains``, unknown fields) gets HTTP 400 "Invalid OData parameters
supplied", as the real service answers; values are case-sensitive as in the preview version.
Failures (any HTTP status, e.g. 429 or 500) and implausible prices can be injected.

Built-in items (USD, Linux unless the product says Windows):
- Standard_NC24ads_A100_v4 eastus 3.673 $/h, Spot 0.444433; Standard_NC48ads_A100_v4 eastus2 7.346,
  Spot 0.95498; Standard_NC4as_T4_v3 eastus 0.526, Spot 0.062699; Standard_NV36ads_A10_v5 eastus 3.2,
  Spot 0.8: skypilot-org/skypilot-catalog catalogs/v6/azure/vms.csv @098741e7 (a snapshot of this
  API). Product names as the API spells them ("Virtual Machines NCadsA100v4 Series", ...).
- Standard_NC48ads_A100_v4 eastus2 savings plan 3 years 4.5317474 $/h (a live row captured 2026-06-27
  in a public test fixture).
- Standard_D4ds_v5 eastus 0.226 $/h, savings plan 0.154471 (1 year) / 0.1032142 (3 years),
  reservations 1168 (1 year) / 2257 (3 years) TOTAL per term: "verified directly against the live
  API (2026-08)" in a public cost tool's source. No GPU, but the only reservation items found public.
- The Windows, Low Priority and DevTestConsumption rows are there to be ignored; their prices are
  illustrative (the Windows licence uplift), not quoted from a source.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable, Iterable
from copy import deepcopy
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from providers.sandbox.json_server import JsonApiServer

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # the real API's page
PREVIEW = "2023-01-01-preview"
FIELDS = {"armRegionName", "location", "meterId", "meterName", "productId", "skuId", "productName", "skuName",
          "serviceName", "serviceId", "serviceFamily", "priceType", "armSkuName", "currencyCode"}
INVALID_ODATA = "Invalid OData parameters supplied"
_TOKEN = re.compile(r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<str>'(?:[^']|'')*')"
                    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\S))")

_LOCATION = {"eastus": "US East", "eastus2": "US East 2"}
_PRODUCT = {"NC": "Virtual Machines NCadsA100v4 Series", "T4": "Virtual Machines NCasT4 v3 Series",
            "NV": "Virtual Machines NVadsA10v5 Series", "D": "Virtual Machines Ddsv5 Series"}


def _item(arm: str, region: str, product: str, sku: str, price: str, kind: str = "Consumption",
          term: str | None = None, plans: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    value = float(Decimal(price))
    item: dict[str, Any] = {
        "currencyCode": "USD", "tierMinimumUnits": 0.0, "retailPrice": value, "unitPrice": value,
        "armRegionName": region, "location": _LOCATION.get(region, region),
        "effectiveStartDate": "2024-05-01T00:00:00Z", "meterId": f"emu-{arm}-{region}-{sku}-{kind}-{term}".lower(),
        "meterName": sku, "productId": "DZH318Z0BQ4L",
        "skuId": f"DZH318Z0BQ4L/{zlib.crc32(f'{arm}/{sku}'.encode()) % 9999:04d}",
        "productName": product, "skuName": sku, "serviceName": "Virtual Machines", "serviceId": "DZH313Z7MMC8",
        "serviceFamily": "Compute", "unitOfMeasure": "1 Hour", "type": kind, "isPrimaryMeterRegion": True,
        "armSkuName": arm,
    }
    if term:
        item["reservationTerm"] = term
    if plans:
        item["savingsPlan"] = [{"unitPrice": float(Decimal(p)), "retailPrice": float(Decimal(p)), "term": t}
                               for t, p in plans]
    return item


def default_items() -> list[dict[str, Any]]:
    nc, t4, nv, d = _PRODUCT["NC"], _PRODUCT["T4"], _PRODUCT["NV"], _PRODUCT["D"]
    return [
        _item("Standard_NC24ads_A100_v4", "eastus", nc, "NC24ads A100 v4", "3.673"),
        _item("Standard_NC24ads_A100_v4", "eastus", nc, "NC24ads A100 v4 Spot", "0.444433"),
        _item("Standard_NC24ads_A100_v4", "eastus", nc + " Windows", "NC24ads A100 v4", "3.857"),
        _item("Standard_NC48ads_A100_v4", "eastus2", nc, "NC48ads A100 v4", "7.346",
              plans=(("3 Years", "4.5317474"),)),
        _item("Standard_NC48ads_A100_v4", "eastus2", nc, "NC48ads A100 v4 Spot", "0.95498"),
        _item("Standard_NC4as_T4_v3", "eastus", t4, "NC4as T4 v3", "0.526"),
        _item("Standard_NC4as_T4_v3", "eastus", t4, "NC4as T4 v3 Spot", "0.062699"),
        _item("Standard_NC4as_T4_v3", "eastus", t4, "NC4as T4 v3 Low Priority", "0.1052"),
        _item("Standard_NC4as_T4_v3", "eastus", t4 + " Windows", "NC4as T4 v3", "0.71"),
        _item("Standard_NC4as_T4_v3", "eastus", t4 + " Windows", "NC4as T4 v3", "0.41", kind="DevTestConsumption"),
        _item("Standard_NV36ads_A10_v5", "eastus", nv, "NV36ads A10 v5", "3.2"),
        _item("Standard_NV36ads_A10_v5", "eastus", nv, "NV36ads A10 v5 Spot", "0.8"),
        _item("Standard_D4ds_v5", "eastus", d, "D4ds v5", "0.226",
              plans=(("1 Year", "0.154471"), ("3 Years", "0.1032142"))),
        _item("Standard_D4ds_v5", "eastus", d, "D4ds v5", "1168", kind="Reservation", term="1 Year"),
        _item("Standard_D4ds_v5", "eastus", d, "D4ds v5", "2257", kind="Reservation", term="3 Years"),
        _item("Standard_D4ds_v5", "eastus", d + " Windows", "D4ds v5", "0.41"),
    ]


class FilterError(ValueError):
    """The $filter uses something outside the supported subset."""


def parse_filter(text: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate for ``eq`` / ``and`` / ``or`` / parentheses; anything else raises ``FilterError``."""
    tokens = []
    for m in _TOKEN.finditer(text.strip()):
        if m["bad"] is not None:
            raise FilterError(f"unexpected {m['bad']!r}")
        kind = next(k for k in ("open", "close", "str", "word") if m[k] is not None)
        tokens.append((kind, m[kind]))
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(kind: str, value: str | None = None) -> str:
        nonlocal pos
        tok = peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise FilterError(f"expected {value or kind} at token {pos}")
        pos += 1
        return tok[1]

    def expr() -> Callable[[dict[str, Any]], bool]:
        parts = [term()]
        while peek() == ("word", "or"):
            take("word", "or")
            parts.append(term())
        return parts[0] if len(parts) == 1 else (lambda item, ps=tuple(parts): any(p(item) for p in ps))

    def term() -> Callable[[dict[str, Any]], bool]:
        parts = [factor()]
        while peek() == ("word", "and"):
            take("word", "and")
            parts.append(factor())
        return parts[0] if len(parts) == 1 else (lambda item, ps=tuple(parts): all(p(item) for p in ps))

    def factor() -> Callable[[dict[str, Any]], bool]:
        if peek() == ("open", "("):
            take("open")
            inner = expr()
            take("close")
            return inner
        name = take("word")
        if name not in FIELDS:
            raise FilterError(f"unknown field {name}")
        take("word", "eq")
        value = take("str")[1:-1].replace("''", "'")
        key = "type" if name == "priceType" else name
        return lambda item: item.get(key) == value

    if not tokens:
        return lambda item: True
    predicate = expr()
    if pos != len(tokens):
        raise FilterError(f"unexpected {tokens[pos][1]!r}")
    return predicate


class AzurePricesEmulator(JsonApiServer):
    """The emulator on 127.0.0.1 (an ephemeral port); use as a context manager or start()/stop()."""

    name = "azure-prices-emulator"

    def __init__(self, items: Iterable[dict[str, Any]] | None = None, *, page_size: int = PAGE_SIZE) -> None:
        super().__init__()
        self._items = [deepcopy(i) for i in (items if items is not None else default_items())]
        self.page_size = page_size

    def set_price(self, arm_sku: str, sku_name: str, price: Decimal | str, *, kind: str = "Consumption",
                  term: str | None = None) -> None:
        """Change the unit and retail price of matching items (e.g. to something implausible)."""
        with self._lock:
            for item in self._items:
                if (item["armSkuName"], item["skuName"], item["type"], item.get("reservationTerm")) == (
                        arm_sku, sku_name, kind, term):
                    item["unitPrice"] = item["retailPrice"] = float(Decimal(str(price)))

    def add_item(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(deepcopy(item))

    @property
    def url(self) -> str:
        """The base URL to give ``RetailPricesClient(base_url=...)``."""
        return f"{super().url}/api/retail/prices"

    def count(self, fragment: str = "/api/retail/prices") -> int:
        return super().count(fragment)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return _error("InjectedFailure", message)

    def answer(self, path: str, query: dict[str, list[str]], host: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            items = [deepcopy(i) for i in self._items]
        if path.rstrip("/") != "/api/retail/prices":
            return 404, _error("NotFound", f"no route {path}")
        filter_text = (query.get("$filter") or [""])[0]
        currency = (query.get("currencyCode") or ["USD"])[0].strip("'")
        try:
            predicate = parse_filter(filter_text)
            skip = int((query.get("$skip") or ["0"])[0])
        except (FilterError, ValueError):
            return 400, _error("BadRequest", INVALID_ODATA)
        if currency != "USD":
            return 400, _error("BadRequest", f"currencyCode {currency}: this emulator prices in USD only")
        version = (query.get("api-version") or [""])[0]
        matched = [i for i in items if predicate(i)]
        if version != PREVIEW:
            for item in matched:
                item.pop("savingsPlan", None)
        page = matched[skip:skip + self.page_size]
        next_link = None
        if skip + self.page_size < len(matched):
            params = {k: v[0] for k, v in query.items() if k != "$skip"}
            params["$skip"] = str(skip + self.page_size)
            next_link = f"http://{host}{path}?{urlencode(params)}"
        return 200, {"BillingCurrency": "USD", "CustomerEntityId": "Default", "CustomerEntityType": "Retail",
                     "Items": page, "NextPageLink": next_link, "Count": len(page)}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}}
