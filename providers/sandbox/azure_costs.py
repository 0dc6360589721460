"""A local emulator of Azure Cost Management's query API (``Microsoft.CostManagement/query``).

Written from the public REST reference (Query - Usage, api-version 2019-01-01 .. 2025-03-01, the last
being what azure-mgmt-costmanagement 5 sends) and shaped on recorded answers (cloud-custodian's
``CostFilterTest`` cassettes) and the reference's examples:

- ``POST /{scope}/providers/Microsoft.CostManagement/query?api-version=...`` with scope
  ``subscriptions/{s}`` or ``subscriptions/{s}/resourceGroups/{rg}`` and a body ``{"type": "ActualCost" |
  "AmortizedCost" | "Usage", "timeframe": "Custom", "timePeriod": {"from", "to"}, "dataset":
  {"granularity": "Daily" | "None", "aggregation": {alias: {"name": "Cost" | "PreTaxCost" | "CostUSD" |
  "PreTaxCostUSD", "function": "Sum"}}, "grouping": [{"type": "Dimension", "name": ...}], "filter":
  {"dimensions": {"name", "operator": "In", "values"}} | {"and": [...]} | {"or": [...]} | {"not": ...}}}``.
- Answer ``{"id", "name", "type", "location", "sku", "eTag", "properties": {"nextLink", "columns": [{"name",
  "type"}], "rows": [[...]]}}``: rows are positional, columns are the aggregations, then the groupings,
  then ``UsageDate`` (a number such as 20261101, with Daily granularity), then ``Currency`` (the
  reference's examples' order; clients must read columns by name). Ids, resource types, locations and
  resource groups come back lower-cased, as the recorded answer shows them. Rows past ``page_size``
  continue at an absolute ``nextLink`` to this server carrying ``$skiptoken``; the client POSTs the same
  body there (the SDK does not follow it).
- ``timePeriod`` days are inclusive (``to`` 2026-11-07T23:59:59 includes the 7th); more than one year
  (366 days) is refused. Up to 15 groupings are accepted: the reference says two, but the service
  takes more (azure-sdk-for-python issue 12973); an unknown one is refused with the service's
  "Invalid dataset grouping" message listing the valid values.
- ``AmortizedCost`` leaves out ``Purchase`` rows (they are spread over the covered usage instead);
  ``ActualCost`` shows everything as billed. No currency conversion: ``CostUSD`` equals ``Cost``.
- Errors ``{"error": {"code", "message"}}``: 400 ``BadRequest`` "Invalid query definition: ...", 401
  without a bearer token, 404 for an unknown subscription (``add_subscription`` / any seeded row makes one
  known), 429 ``"Too many requests. Please retry."`` with the ``x-ms-ratelimit-microsoft.costmanagement-*``
  headers through ``throttle_next`` (``after=n`` lets n requests through first; azure-core does not read
  those headers; add ``Retry-After`` with ``retry_after_header=True``).

Seeding: ``add_usage(subscription, date, resource_id, meter_category, cost, resource_type=..., location=...,
currency=..., pricing_model=..., charge_type=..., meter_subcategory=..., meter=...)`` — one billed line.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import date as Day
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlencode

from providers.sandbox.json_server import JsonApiServer, Request, Response

PAGE_SIZE = 3  # the real service pages at 1000 rows; small here so that paging is exercised
MAX_PERIOD = timedelta(days=366)
MAX_GROUPINGS = 15
AGGREGATION_NAMES = ("Cost", "CostUSD", "PreTaxCost", "PreTaxCostUSD")
QUERY_TYPES = ("ActualCost", "AmortizedCost", "Usage")
#: Valid grouping dimensions at subscription scope (from the service's own error message).
DIMENSIONS = ("ResourceGroup", "ResourceGroupName", "ResourceLocation", "ResourceType", "ResourceId", "MeterId",
              "BillingMonth", "MeterCategory", "MeterSubcategory", "Meter", "SubscriptionId", "SubscriptionName",
              "ServiceName", "ServiceTier", "ChargeType", "PublisherType", "ReservationId", "ReservationName",
              "Frequency", "PricingModel", "BenefitId", "BenefitName")
_SCOPE = re.compile(r"^/?subscriptions/([^/]+)(?:/resourcegroups/([^/]+))?"
                    r"/providers/microsoft\.costmanagement/query/?$", re.IGNORECASE)
_LOWER = {"ResourceId", "ResourceType", "ResourceLocation", "ResourceGroup", "ResourceGroupName"}


class QueryError(Exception):
    """A query definition the service refuses with 400."""


@dataclass(frozen=True)
class UsageLine:
    subscription: str
    day: Day
    cost: Decimal
    values: dict[str, str]  # dimension name -> value (as seeded; lower-cased on output where the service does)


def _resource_type(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    low = [p.lower() for p in parts]
    if "providers" not in low:
        return ""
    i = low.index("providers")
    return "/".join([parts[i + 1]] + parts[i + 2:][0::2])


def _resource_group(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    low = [p.lower() for p in parts]
    return parts[low.index("resourcegroups") + 1] if "resourcegroups" in low else ""


def _day(text: Any) -> Day:
    value = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    return value.astimezone(timezone.utc).date() if value.tzinfo else value.date()


class AzureCostsExtension:
    """The query route, pluggable into the ARM emulator (``handle(arm, request)``) or run standalone."""

    def __init__(self, *, page_size: int = PAGE_SIZE) -> None:
        self.page_size = page_size
        self._lock = threading.RLock()
        self._lines: list[UsageLine] = []
        self._subscriptions: set[str] = set()
        self._throttles: list[tuple[int, bool] | None] = []  # per coming request: None answers normally
        self.bodies: list[dict[str, Any]] = []  # every query body received, for tests

    # -- seeding -----------------------------------------------------------------------------
    def add_subscription(self, subscription: str) -> None:
        with self._lock:
            self._subscriptions.add(subscription.lower())

    def add_usage(self, subscription: str, date: Day | datetime | str, resource_id: str, meter_category: str,
                  cost: Decimal | float | str, *, resource_type: str | None = None, location: str = "eastus",
                  currency: str = "USD", pricing_model: str = "OnDemand", charge_type: str = "Usage",
                  meter_subcategory: str = "", meter: str = "", service_name: str | None = None) -> None:
        """One billed line of one day (``pricing_model``: OnDemand, Reservation, SavingsPlan, Spot;
        ``charge_type``: Usage, Purchase, Refund ...). ``resource_type`` defaults to the id's type."""
        if isinstance(date, datetime):
            day = date.astimezone(timezone.utc).date() if date.tzinfo else date.date()
        else:
            day = _day(date) if isinstance(date, str) else date
        values = {
            "ResourceId": resource_id, "ResourceType": resource_type or _resource_type(resource_id),
            "ResourceLocation": location, "ResourceGroup": _resource_group(resource_id),
            "ResourceGroupName": _resource_group(resource_id), "MeterCategory": meter_category,
            "MeterSubcategory": meter_subcategory, "Meter": meter, "ServiceName": service_name or meter_category,
            "SubscriptionId": subscription, "ChargeType": charge_type, "PricingModel": pricing_model,
            "Currency": currency,
        }
        with self._lock:
            self._subscriptions.add(subscription.lower())
            self._lines.append(UsageLine(subscription, day, Decimal(str(cost)), values))

    def throttle_next(self, count: int = 1, retry_after: int = 60, *, retry_after_header: bool = False,
                      after: int = 0) -> None:
        """Answer ``count`` queries with 429 and the QPU rate-limit headers, once ``after`` more were answered."""
        with self._lock:
            self._throttles.extend([None] * after + [(retry_after, retry_after_header)] * count)

    # -- routing -----------------------------------------------------------------------------
    def handle(self, arm: Any, request: Request) -> Response | None:
        match = _SCOPE.match(re.sub("/+", "/", unquote(request.path)))  # a scope given with a trailing slash
        if match is None:
            return None
        if request.method != "POST":
            return Response(405, _error("MethodNotAllowed", f"{request.method} is not supported; POST the query"))
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return Response(401, _error("AuthenticationFailed", "The 'Authorization' header is missing."))
        with self._lock:
            scheduled = self._throttles.pop(0) if self._throttles else None
            if scheduled is not None:
                wait, with_header = scheduled
                headers = {"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": str(wait),
                           "x-ms-ratelimit-microsoft.costmanagement-qpu-consumed": "0",
                           "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining": "QueriesPerFiveMinutes:0"}
                if with_header:
                    headers["Retry-After"] = str(wait)
                return Response(429, _error("429", "Too many requests. Please retry."), headers)
        if not request.arg("api-version"):
            return Response(400, _error("MissingApiVersionParameter", "The api-version query parameter is required."))
        subscription, group = match.group(1), match.group(2)
        with self._lock:
            known = subscription.lower() in self._subscriptions
        if not known and not _arm_knows(arm, subscription):
            return Response(404, _error("SubscriptionNotFound",
                                        f"The subscription '{subscription}' could not be found."))
        try:
            body = request.json()
            with self._lock:
                self.bodies.append(body)
            columns, rows = self._query(subscription, group, body)
            skip = _read_token(request.arg("$skiptoken"))
        except (QueryError, KeyError, ValueError, TypeError, AttributeError) as exc:
            return Response(400, _error("BadRequest", f"Invalid query definition: {exc}"))
        page = rows[skip: skip + self.page_size]
        next_link = None
        if skip + self.page_size < len(rows):
            params = {k: v[0] for k, v in request.query.items() if k != "$skiptoken"}
            params["$skiptoken"] = _token(skip + self.page_size)
            next_link = f"{request.base_url}{request.path}?{urlencode(params, safe='$')}"
        scope = request.path.split("/providers/", 1)[0].lstrip("/")
        name = str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(body, sort_keys=True)))
        return Response(200, {
            "id": f"{scope}/providers/Microsoft.CostManagement/query/{name}", "name": name,
            "type": "Microsoft.CostManagement/query", "location": None, "sku": None, "eTag": None,
            "properties": {"nextLink": next_link, "columns": columns, "rows": page},
        })

    # -- the query ---------------------------------------------------------------------------
    def _query(self, subscription: str, group: str | None, body: Any) -> tuple[list[dict[str, str]], list[list[Any]]]:
        if not isinstance(body, dict):
            raise QueryError("the body must be a JSON object")
        kind = body.get("type")
        if kind not in QUERY_TYPES:
            raise QueryError(f"Invalid type '{kind}'; valid values: {', '.join(QUERY_TYPES)}")
        if body.get("timeframe") != "Custom":
            raise QueryError(f"timeframe '{body.get('timeframe')}' is not supported here; use Custom with timePeriod")
        period = body.get("timePeriod") or {}
        first, last = _day(period["from"]), _day(period["to"])
        if last < first:
            raise QueryError("timePeriod 'to' is before 'from'")
        if last - first >= MAX_PERIOD:
            raise QueryError("The time period for pulling the data cannot exceed 1 year(s)")
        dataset = body.get("dataset") or {}
        granularity = dataset.get("granularity", "None")
        if granularity not in ("Daily", "None"):
            raise QueryError(f"Invalid granularity '{granularity}'; valid values: Daily, None")
        aggregations = []
        for alias, spec in (dataset.get("aggregation") or {}).items():
            if spec.get("name") not in AGGREGATION_NAMES or str(spec.get("function", "")).lower() != "sum":
                raise QueryError(f"Invalid aggregation '{alias}': name must be one of {', '.join(AGGREGATION_NAMES)} "
                                 "with function Sum")
            aggregations.append(spec["name"])
        groupings = dataset.get("grouping") or []
        if len(groupings) > MAX_GROUPINGS:
            raise QueryError(f"at most {MAX_GROUPINGS} groupings are allowed")
        canonical = {d.lower(): d for d in DIMENSIONS}
        dims = []
        for g in groupings:
            name = canonical.get(str(g.get("name", "")).lower())
            if g.get("type") != "Dimension" or name is None:
                valid = ",".join(f"'{d}'" for d in DIMENSIONS)
                raise QueryError(f"Invalid dataset grouping: '{g.get('name')}'; valid values: {valid}")
            dims.append(name)
        predicate = _predicate(dataset.get("filter"))
        with self._lock:
            lines = [ln for ln in self._lines if ln.subscription.lower() == subscription.lower()
                     and (group is None or ln.values["ResourceGroup"].lower() == group.lower())
                     and first <= ln.day <= last and predicate(ln)
                     and not (kind == "AmortizedCost" and ln.values["ChargeType"] == "Purchase")]
        sums: dict[tuple[Any, ...], Decimal] = {}
        for ln in lines:
            key = (*(_out(d, ln.values[d]) for d in dims),
                   *((int(ln.day.strftime("%Y%m%d")),) if granularity == "Daily" else ()), ln.values["Currency"])
            sums[key] = sums.get(key, Decimal(0)) + ln.cost
        columns = ([{"name": a, "type": "Number"} for a in aggregations] + [{"name": d, "type": "String"} for d in dims]
                   + ([{"name": "UsageDate", "type": "Number"}] if granularity == "Daily" else [])
                   + [{"name": "Currency", "type": "String"}])
        ordered = sorted(sums, key=lambda k: (k[-2] if granularity == "Daily" else 0, tuple(map(str, k))))
        rows = [[*(float(sums[k]) for _ in aggregations), *k] for k in ordered]
        return columns, rows


def _out(dimension: str, value: str) -> str:
    return value.lower() if dimension in _LOWER else value


def _predicate(spec: Any) -> Any:
    if not spec:
        return lambda line: True
    if not isinstance(spec, dict) or len(spec) != 1:
        raise QueryError("a filter holds exactly one of and, or, not, dimensions")
    (key, value), = spec.items()
    if key in ("and", "or"):
        if not isinstance(value, list) or len(value) < 2:
            raise QueryError(f"'{key}' needs at least two expressions")
        parts = [_predicate(v) for v in value]
        return (lambda ln: all(p(ln) for p in parts)) if key == "and" else (lambda ln: any(p(ln) for p in parts))
    if key == "not":
        inner = _predicate(value)
        return lambda ln: not inner(ln)
    if key == "dimensions":
        name = {d.lower(): d for d in DIMENSIONS}.get(str(value.get("name", "")).lower())
        if name is None or value.get("operator") != "In":
            raise QueryError(f"Invalid filter dimension '{value.get('name')}' or operator '{value.get('operator')}'")
        wanted = {str(v).lower() for v in value.get("values") or []}
        return lambda ln: ln.values[name].lower() in wanted
    raise QueryError(f"unsupported filter '{key}' (tags filters are not emulated)")


def _token(offset: int) -> str:
    return base64.b64encode(offset.to_bytes(4, "little")).decode()


def _read_token(text: str | None) -> int:
    return int.from_bytes(base64.b64decode(text), "little") if text else 0


def _arm_knows(arm: Any, subscription: str) -> bool:
    subs = getattr(arm, "subscriptions", None)  # the ARM emulator's {id: json}
    return isinstance(subs, dict) and any(str(k).lower() == subscription.lower() for k in subs)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class AzureCostsEmulator(JsonApiServer):
    """The Cost Management query route alone on an HTTPS server (``AzureClients(base_url=url)``)."""

    name = "azure-costs-emulator"

    def __init__(self, extension: AzureCostsExtension | None = None, *, page_size: int = PAGE_SIZE) -> None:
        super().__init__(tls=True)
        self.extension = extension or AzureCostsExtension(page_size=page_size)
        self.add_usage = self.extension.add_usage
        self.add_subscription = self.extension.add_subscription
        self.throttle_next = self.extension.throttle_next

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        codes = {400: "BadRequest", 401: "AuthenticationFailed", 403: "RBACAccessDenied", 404: "NotFound",
                 429: "429", 503: "ServiceUnavailable"}
        return _error(codes.get(status, str(status)), message)

    def handle(self, request: Request) -> Response:
        answer = self.extension.handle(self, request)
        if answer is None:
            return Response(404, _error("NotFound", f"no route for {request.method} {request.path}"))
        return answer
