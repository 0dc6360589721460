"""A local emulator of the BigQuery v2 REST API for Cloud Billing export tables, running the SQL in DuckDB.

Routes (``/bigquery/v2/projects/{p}/...``), written from the public REST reference and what
google-cloud-bigquery 3.x sends: ``POST queries`` (jobs.query: ``query``, ``useLegacySql``,
``queryParameters``/``parameterMode``, ``maxResults``, ``location``, ``jobCreationMode``,
``formatOptions.useInt64Timestamp``), ``POST jobs`` (jobs.insert of a query job), ``GET jobs/{id}``,
``GET queries/{id}`` (getQueryResults: ``pageToken``, ``startIndex``, ``maxResults``), ``POST
jobs/{id}/cancel`` and ``GET datasets/{d}/tables/{t}`` (tables.get: the schema). Answers carry typed
rows in BigQuery's JSON wire format: ``schema.fields`` (RECORD / REPEATED for labels and credits), rows
as ``{"f": [{"v": ...}]}``, every scalar a string, TIMESTAMP as int64 microseconds when the client asks
``useInt64Timestamp`` (it always does) else float seconds (``"1.7672256E9"``), ``totalRows``,
``pageToken`` with a small page size so paging is exercised, ``jobComplete: true``. Every query runs to
completion at once; with ``JOB_CREATION_OPTIONAL`` and one page of results no job is created.

Errors are Google's shape ``{"error": {"code", "message", "status", "errors": [{"reason", ...}]}}``:
404 ``notFound`` (unknown table, wrong location), 403 ``accessDenied`` (``deny``), 400 ``invalidQuery``
(SQL DuckDB refuses), and any status by ``fail_next`` (429 ``rateLimitExceeded``, 503 ``backendError``).

The SQL subset, executed by DuckDB after this translation (keep queries inside it): table names in
backticks (```project.dataset.table``` or ```dataset.table``` in the job's project); ``@name`` and ``?``
parameters of types STRING, INT64, FLOAT64, NUMERIC, BOOL, TIMESTAMP, DATE, DATETIME and ARRAY of
those; ``TIMESTAMP '...'`` / ``TIMESTAMP('...')`` literals (offsets honoured, UTC when absent); CAST to
NUMERIC (-> DECIMAL(38,9)), BIGNUMERIC, FLOAT64, INT64, STRING, BOOL; ``UNNEST(array) AS alias``,
``x IN UNNEST(array)`` (and an unaliased ``FROM UNNEST(records)`` whose fields become columns);
``CAST(ts AS DATE)``, ``IFNULL``, ``COALESCE``, ``LIKE``, ``LOWER``/``UPPER``, ``STARTS_WITH``, scalar
subqueries, window functions, ``WITH``, ``GROUP BY`` ordinals. Only queries (SELECT / WITH) run. Not
emulated: ``_PARTITIONTIME``, INFORMATION_SCHEMA, legacy SQL, unquoted table names, ``dryRun``, STRUCT
parameters, jobs still running; jobs.insert refuses a bad query at once (BigQuery answers a DONE job
carrying ``status.errorResult``).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import duckdb

from providers.sandbox.json_server import JsonApiServer, Request, Response

PREFIX = "/bigquery/v2/projects/"
DEFAULT_PAGE_SIZE = 25  # real BigQuery pages by ~10 MB; small here so clients page
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_REASON = {400: "invalid", 401: "authError", 403: "accessDenied", 404: "notFound", 409: "duplicate",
           429: "rateLimitExceeded", 500: "internalError", 503: "backendError"}


def _f(name: str, typ: str = "STRING", mode: str = "NULLABLE", *fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": typ, "mode": mode}
    if fields:
        out["fields"] = list(fields)
    return out


def _kv(name: str) -> dict[str, Any]:
    return _f(name, "RECORD", "REPEATED", _f("key"), _f("value"))


#: The standard usage cost export (``gcp_billing_export_v1_<ACCOUNT>``), per the public schema reference.
STANDARD_SCHEMA: tuple[dict[str, Any], ...] = (
    _f("billing_account_id"),
    _f("service", "RECORD", "NULLABLE", _f("id"), _f("description")),
    _f("sku", "RECORD", "NULLABLE", _f("id"), _f("description")),
    _f("usage_start_time", "TIMESTAMP"), _f("usage_end_time", "TIMESTAMP"),
    _f("project", "RECORD", "NULLABLE", _f("id"), _f("number"), _f("name"), _kv("labels"), _f("ancestry_numbers")),
    _kv("labels"), _kv("system_labels"),
    _f("location", "RECORD", "NULLABLE", _f("location"), _f("country"), _f("region"), _f("zone")),
    _f("tags", "RECORD", "REPEATED", _f("key"), _f("value"), _f("inherited", "BOOLEAN"), _f("namespace")),
    _f("transaction_type"), _f("seller_name"),
    _f("export_time", "TIMESTAMP"), _f("cost", "FLOAT"), _f("currency"), _f("currency_conversion_rate", "FLOAT"),
    _f("usage", "RECORD", "NULLABLE", _f("amount", "FLOAT"), _f("unit"), _f("amount_in_pricing_units", "FLOAT"),
       _f("pricing_unit")),
    _f("credits", "RECORD", "REPEATED", _f("name"), _f("amount", "FLOAT"), _f("full_name"), _f("id"), _f("type")),
    _f("invoice", "RECORD", "NULLABLE", _f("month"), _f("publisher_type")),
    _f("cost_type"),
    _f("adjustment_info", "RECORD", "NULLABLE", _f("id"), _f("description"), _f("mode"), _f("type")),
    _f("cost_at_list", "FLOAT"),
)
#: The detailed (resource-level) export (``gcp_billing_export_resource_v1_<ACCOUNT>``): standard + resource, price.
DETAILED_SCHEMA: tuple[dict[str, Any], ...] = STANDARD_SCHEMA + (
    _f("resource", "RECORD", "NULLABLE", _f("name"), _f("global_name")),
    _f("price", "RECORD", "NULLABLE", _f("effective_price", "NUMERIC"), _f("tier_start_amount", "NUMERIC"),
       _f("unit"), _f("pricing_unit_quantity", "NUMERIC")),
)
_FOCUS_STRINGS = ("AvailabilityZone", "BillingAccountId", "BillingAccountName", "BillingCurrency", "ChargeCategory",
                  "ChargeClass", "ChargeDescription", "ChargeFrequency", "CommitmentDiscountCategory",
                  "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountStatus",
                  "CommitmentDiscountType", "ConsumedUnit", "InvoiceIssuerName", "PricingCategory", "PricingUnit",
                  "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName",
                  "ResourceType", "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId", "SubAccountId",
                  "SubAccountName")
_FOCUS_NUMBERS = ("BilledCost", "ConsumedQuantity", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
                  "ListCost", "ListUnitPrice", "PricingQuantity")
#: FOCUS 1.0 columns (NUMERIC money, TIMESTAMP periods) plus the ``x_`` extensions Google's FOCUS export adds.
FOCUS_SCHEMA: tuple[dict[str, Any], ...] = tuple(sorted(
    [_f(n) for n in _FOCUS_STRINGS] + [_f(n, "NUMERIC") for n in _FOCUS_NUMBERS]
    + [_f(n, "TIMESTAMP") for n in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")],
    key=lambda f: f["name"])) + (
    _f("x_CostType"), _f("x_ServiceId"), _f("x_Location"), _f("x_ExportTime", "TIMESTAMP"),
    _f("x_Credits", "RECORD", "REPEATED", _f("name"), _f("amount", "FLOAT"), _f("full_name"), _f("id"), _f("type")),
    _kv("x_Labels"), _kv("x_SystemLabels"),
)

_DUCK = {"STRING": "VARCHAR", "INTEGER": "BIGINT", "INT64": "BIGINT", "FLOAT": "DOUBLE", "FLOAT64": "DOUBLE",
         "NUMERIC": "DECIMAL(38,9)", "BIGNUMERIC": "DECIMAL(38,18)", "BOOLEAN": "BOOLEAN", "BOOL": "BOOLEAN",
         "TIMESTAMP": "TIMESTAMP", "DATETIME": "TIMESTAMP", "DATE": "DATE", "JSON": "VARCHAR"}


def _duck_type(f: Mapping[str, Any]) -> str:
    t = f["type"].upper()
    base = ("STRUCT(" + ", ".join(f'"{c["name"]}" {_duck_type(c)}' for c in f["fields"]) + ")"
            if t in ("RECORD", "STRUCT") else _DUCK[t])
    return base + "[]" if f.get("mode") == "REPEATED" else base


def _utc_naive(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"naive timestamp {value.isoformat()}: give UTC-aware times")
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _plain(f: Mapping[str, Any], value: Any, repeated: bool | None = None) -> Any:
    """``value`` as JSON for DuckDB's JSON -> typed cast (dicts for RECORDs, lists for REPEATED)."""
    t = f["type"].upper()
    if repeated is None:
        repeated = f.get("mode") == "REPEATED"
    if repeated:
        if value is None:
            return []
        if isinstance(value, Mapping) and [c["name"] for c in f.get("fields", ())][:2] == ["key", "value"]:
            value = [{"key": k, "value": v} for k, v in value.items()]  # labels given as a plain dict
        return [_plain(f, v, False) for v in value]
    if value is None:
        return None
    if t in ("RECORD", "STRUCT"):
        unknown = set(value) - {c["name"] for c in f["fields"]}
        if unknown:
            raise ValueError(f"{f['name']}: unknown field(s) {', '.join(sorted(unknown))}")
        return {c["name"]: _plain(c, value.get(c["name"])) for c in f["fields"]}
    if t in ("TIMESTAMP", "DATETIME"):
        return _utc_naive(value).isoformat(sep=" ")
    if t == "DATE":
        return value if isinstance(value, str) else value.isoformat()
    if t in ("FLOAT", "FLOAT64"):
        return float(value)
    if t in ("NUMERIC", "BIGNUMERIC"):
        return str(Decimal(str(value)))  # a string: exact digits
    if t in ("INTEGER", "INT64"):
        return int(value)
    if t in ("BOOLEAN", "BOOL"):
        return bool(value)
    return str(value)


@dataclass
class _Table:
    project: str
    dataset: str
    table: str
    schema: tuple[dict[str, Any], ...]
    location: str
    rows: int = 0

    @property
    def full(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


@dataclass
class _Job:
    project: str
    job_id: str
    location: str
    query: str
    fields: list[dict[str, Any]]
    rows: list[tuple[Any, ...]]
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))


class QueryError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class GcpBigQueryEmulator(JsonApiServer):
    """BigQuery holding billing export tables; ``url`` goes to ``GcpClients(endpoints={"bigquery": url})``.

    Seed with ``add_billing_table`` (standard/detailed usage cost export rows), ``add_focus_table``
    (FOCUS export rows) or ``add_table`` (any schema); ``deny`` makes a table or project answer 403.
    """

    name = "gcp-bigquery-emulator"
    content_type = "application/json; charset=UTF-8"

    def __init__(self, *, page_size: int = DEFAULT_PAGE_SIZE, location: str = "US") -> None:
        super().__init__()
        self.page_size = page_size
        self.location = location
        self._db: duckdb.DuckDBPyConnection | None = duckdb.connect()
        self._db.execute("SET TimeZone='UTC'")
        self._tables: dict[str, _Table] = {}
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._denied: set[str] = set()
        self._ids = itertools.count(1)
        self._db_lock = threading.Lock()

    # -- seeding -------------------------------------------------------------------------------
    def add_table(self, project: str, dataset: str, table: str, schema: Sequence[Mapping[str, Any]],
                  rows: Iterable[Mapping[str, Any]], *, location: str | None = None) -> None:
        """Create (or replace) ``project.dataset.table`` with a BigQuery ``schema`` (a list of
        ``{"name", "type", "mode", "fields"}``) and ``rows`` as dicts (RECORD -> dict, REPEATED -> list,
        TIMESTAMP -> aware datetime or ISO string, missing keys -> NULL, unknown keys -> ValueError)."""
        fields = tuple(dict(f) for f in schema)
        names = {f["name"] for f in fields}
        tbl = _Table(project, dataset, table, fields, location or self.location)
        values = []
        for row in rows:
            unknown = set(row) - names
            if unknown:
                raise ValueError(f"{tbl.full}: unknown column(s) {', '.join(sorted(unknown))}")
            values.append({f["name"]: _plain(f, row.get(f["name"])) for f in fields})
        ident = f'"{tbl.full}"'
        columns = ", ".join(f'"{f["name"]}" {_duck_type(f)}' for f in fields)
        with self._db_lock:
            db = self._database()
            db.execute(f"CREATE OR REPLACE TABLE {ident} ({columns})")
            for start in range(0, len(values), 20_000):  # JSON cast to typed rows: ~100k rows/s
                db.execute(f"INSERT INTO {ident} SELECT s.* FROM (SELECT UNNEST(CAST(CAST(? AS JSON) AS "
                           f"STRUCT({columns})[])) AS s)", [json.dumps(values[start:start + 20_000])])
        tbl.rows = len(values)
        with self._lock:
            self._tables[tbl.full.lower()] = tbl

    def add_billing_table(self, project: str, dataset: str, table: str, rows: Iterable[Mapping[str, Any]], *,
                          detailed: bool | None = None, location: str | None = None) -> None:
        """A Cloud Billing usage cost export table; ``rows`` use the export's column names.

        Keys: ``billing_account_id``, ``service{id, description}``, ``sku{id, description}``,
        ``usage_start_time``/``usage_end_time`` (aware datetimes), ``project{id, number, name, labels,
        ancestry_numbers}``, ``labels`` and ``system_labels`` (``[{key, value}]`` or a dict, e.g.
        ``{"compute.googleapis.com/machine_spec": "a2-highgpu-1g"}``), ``location{location, country,
        region, zone}``, ``cost`` (float or Decimal), ``currency``, ``usage{amount, unit,
        amount_in_pricing_units, pricing_unit}``, ``credits[{name, amount, type, id, full_name}]`` (amounts
        negative), ``invoice{month}``, ``cost_type``, ``adjustment_info``, ``cost_at_list``; the detailed
        export adds ``resource{name, global_name}`` and ``price``. Defaults: ``usage_end_time`` = start + 1 h,
        ``export_time`` = end, ``currency`` USD, ``cost_type`` regular, ``invoice.month`` from the start.
        ``detailed`` (default: whether any row has ``resource``) picks the detailed schema.
        """
        prepared = [self._billing_defaults(r) for r in rows]
        if detailed is None:
            detailed = any(r.get("resource") for r in prepared)
        self.add_table(project, dataset, table, DETAILED_SCHEMA if detailed else STANDARD_SCHEMA, prepared,
                       location=location)

    def add_focus_table(self, project: str, dataset: str, table: str, rows: Iterable[Mapping[str, Any]], *,
                        location: str | None = None) -> None:
        """A FOCUS export table (Google's ``gcp_billing_export_focus_<ACCOUNT>``): FOCUS 1.0 column names
        (``ChargePeriodStart``, ``SubAccountId``, ``RegionId``, ``ServiceName``, ``SkuId``, ``ResourceId``,
        ``ResourceName``, ``BilledCost``, ``EffectiveCost``, ``BillingCurrency``, ...) plus ``x_Credits``,
        ``x_Labels``, ``x_SystemLabels`` (``[{key, value}]`` or a dict), ``x_ServiceId``, ``x_Location``,
        ``x_CostType``, ``x_ExportTime``. ``ChargePeriodEnd`` defaults to start + 1 h; ``BillingCurrency`` to USD;
        ``ProviderName``/``PublisherName``/``InvoiceIssuerName`` to Google Cloud; ``ChargeCategory`` to Usage.
        """
        prepared = []
        for row in rows:
            r = dict(row)
            start = r.get("ChargePeriodStart")
            if start is not None and r.get("ChargePeriodEnd") is None:
                r["ChargePeriodEnd"] = _utc_naive(start).replace(tzinfo=timezone.utc) + timedelta(hours=1)
            r.setdefault("BillingCurrency", "USD")
            r.setdefault("ChargeCategory", "Usage")
            for k in ("ProviderName", "PublisherName", "InvoiceIssuerName"):
                r.setdefault(k, "Google Cloud")
            prepared.append(r)
        self.add_table(project, dataset, table, FOCUS_SCHEMA, prepared, location=location)

    @staticmethod
    def _billing_defaults(row: Mapping[str, Any]) -> dict[str, Any]:
        r = dict(row)
        start = r.get("usage_start_time")
        if start is not None:
            begin = _utc_naive(start).replace(tzinfo=timezone.utc)
            r.setdefault("usage_end_time", begin + timedelta(hours=1))
            r.setdefault("invoice", {"month": begin.strftime("%Y%m")})
        r.setdefault("export_time", r.get("usage_end_time"))
        r.setdefault("currency", "USD")
        r.setdefault("currency_conversion_rate", 1.0)
        r.setdefault("cost_type", "regular")
        r.setdefault("billing_account_id", "012345-6789AB-CDEF01")
        return r

    def deny(self, name: str) -> None:
        """Answer 403 accessDenied for a table (``"p.d.t"``: queries and tables.get) or a project (``"p"``: jobs)."""
        with self._lock:
            self._denied.add(name.lower())

    def stop(self) -> None:
        """Stop serving and drop the tables (the DuckDB database is closed)."""
        super().stop()
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # freed now, not at interpreter exit

    def _database(self) -> duckdb.DuckDBPyConnection:
        if self._db is None:
            raise RuntimeError(f"{self.name} stopped: its tables are gone")
        return self._db

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return _error(status, _REASON.get(status, "invalid"), message)

    # -- API -----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if not request.path.startswith(PREFIX):
            return Response(404, _error(404, "notFound", f"Not found: URL {request.path}"))
        parts = request.path[len(PREFIX):].strip("/").split("/")
        project, rest, method = parts[0], parts[1:], request.method
        try:
            if method == "POST" and rest == ["queries"]:
                return self._jobs_query(project, request.json() or {})
            if method == "POST" and rest == ["jobs"]:
                return self._jobs_insert(project, request.json() or {})
            if method == "GET" and len(rest) == 2 and rest[0] == "jobs":
                return Response(200, self._job_resource(self._job(project, rest[1])))
            if method == "POST" and len(rest) == 3 and rest[0] == "jobs" and rest[2] == "cancel":
                return Response(200, {"kind": "bigquery#jobCancelResponse",
                                      "job": self._job_resource(self._job(project, rest[1]))})
            if method == "GET" and len(rest) == 2 and rest[0] == "queries":
                return self._get_query_results(self._job(project, rest[1]), request)
            if method == "GET" and len(rest) == 4 and rest[0] == "datasets" and rest[2] == "tables":
                return Response(200, self._table_resource(self._table(f"{project}.{rest[1]}.{rest[3]}", None)))
        except QueryError as exc:
            return Response(exc.status, _error(exc.status, exc.reason, str(exc)))
        except ValueError as exc:
            return Response(400, _error(400, "invalid", f"Invalid request: {exc}"))
        return Response(404, _error(404, "notFound", f"Not found: {method} {request.path}"))

    def _jobs_query(self, project: str, body: Mapping[str, Any]) -> Response:
        job = self._run(project, body, body.get("location"))
        size = self._size(body.get("maxResults"))
        optional = body.get("jobCreationMode") == "JOB_CREATION_OPTIONAL"
        answer = self._page(job, 0, size, _int64(body.get("formatOptions", {})))
        answer.update(kind="bigquery#queryResponse", queryId=f"query-{job.job_id}")
        if optional and "pageToken" not in answer:
            with self._lock:
                self._jobs.pop((project, job.job_id))  # answered in one page: no job was created
            answer.pop("jobReference")
        elif optional:
            answer["jobCreationReason"] = {"code": "LARGE_RESULTS"}
        return Response(200, answer)

    def _jobs_insert(self, project: str, body: Mapping[str, Any]) -> Response:
        ref = body.get("jobReference") or {}
        config = (body.get("configuration") or {}).get("query")
        if config is None:
            raise QueryError(400, "invalid", "Only query jobs are emulated")
        job = self._run(project, config, ref.get("location"), ref.get("jobId"))
        return Response(200, self._job_resource(job))

    def _get_query_results(self, job: _Job, request: Request) -> Response:
        token = request.arg("pageToken")
        start = _decode(token, job.job_id) if token else int(request.arg("startIndex") or 0)
        int64 = (request.arg("formatOptions.useInt64Timestamp") or "").lower() == "true"
        answer = self._page(job, start, self._size(request.arg("maxResults")), int64)
        answer.update(kind="bigquery#getQueryResultsResponse", etag=f'"{job.job_id}-{start}"')
        return Response(200, answer)

    # -- execution -----------------------------------------------------------------------------
    def _run(self, project: str, config: Mapping[str, Any], location: str | None, job_id: str | None = None) -> _Job:
        with self._lock:
            if project.lower() in self._denied:
                raise QueryError(403, "accessDenied", f"Access Denied: Project {project}: User does not have "
                                 f"bigquery.jobs.create permission in project {project}.")
        if config.get("useLegacySql"):
            raise QueryError(400, "invalidQuery", "Legacy SQL is not emulated; set useLegacySql=false")
        sql, tables = self._translate(str(config.get("query", "")), project)
        if not re.match(r"\s*\(*\s*(SELECT|WITH)\b", sql, flags=re.I):
            raise QueryError(400, "invalidQuery", "Only queries (SELECT / WITH) are emulated")
        where = location
        for name in tables:
            where = self._table(name, where).location
        params = _parameters(config.get("queryParameters") or [])
        with self._db_lock:
            try:
                db = self._database()
                rel = db.sql(sql, params=params) if params else db.sql(sql)
                names, types = list(rel.columns), list(rel.types)
                rows = rel.fetchall() if "TIME ZONE" not in " ".join(map(str, types)) else rel.project(
                    ", ".join(f'CAST("{n}" AS TIMESTAMP) AS "{n}"' if "TIME ZONE" in str(t) else f'"{n}"'
                              for n, t in zip(names, types, strict=True))).fetchall()
            except duckdb.CatalogException as exc:
                raise QueryError(404, "notFound", f"Not found: {_first(exc)}") from exc
            except duckdb.Error as exc:
                raise QueryError(400, "invalidQuery", _first(exc)) from exc
        job = _Job(project, job_id or f"emulated_job_{next(self._ids)}", where or self.location,
                   str(config.get("query", "")), [_bq_field(n, t) for n, t in zip(names, types, strict=True)], rows)
        with self._lock:
            self._jobs[(project, job.job_id)] = job
        return job

    def _translate(self, sql: str, project: str) -> tuple[str, list[str]]:
        """BigQuery SQL (the subset in the module docstring) -> DuckDB SQL, and the tables it names."""
        held: list[str] = []
        tables: list[str] = []

        def hold(text: str) -> str:
            held.append(text)
            return f"\x00{len(held) - 1}\x00"

        def token(m: re.Match[str]) -> str:
            text = m.group(0)
            if text.startswith(("--", "#", "/*")):
                return " "
            if text.startswith("`"):
                name = text[1:-1]
                if "." not in name:
                    return hold(f'"{name}"')
                name = name if name.count(".") >= 2 else f"{project}.{name}"
                tables.append(name)
                return hold(f'"{name.lower()}"')
            return hold(_quote(text[1:-1].replace("''", "'").replace("\\'", "'").replace('\\"', '"')))

        code = re.sub(r"--[^\n]*|#[^\n]*|/\*.*?\*/|`[^`]*`|'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"", token,
                      sql, flags=re.S)
        code = re.sub(r"\bTIMESTAMP\s*(?:\(\s*(\x00\d+\x00)\s*\)|(\x00\d+\x00))",
                      lambda m: f"CAST(TIMESTAMPTZ {m.group(1) or m.group(2)} AS TIMESTAMP)", code, flags=re.I)
        code = re.sub(r"\bBIGNUMERIC\b", "DECIMAL(38,18)", code, flags=re.I)
        for bq, duck in (("NUMERIC", "DECIMAL(38,9)"), ("FLOAT64", "DOUBLE"), ("INT64", "BIGINT"),
                         ("STRING", "VARCHAR"), ("BOOL", "BOOLEAN")):
            code = re.sub(rf"(\bAS\s+){bq}\b", rf"\g<1>{duck}", code, flags=re.I)
        code = re.sub(r"@(\w+)", r"$\1", code)
        code = re.sub(r"\bIN\s+UNNEST\s*\(\s*(\$\w+|\?|[A-Za-z_][\w.]*)\s*\)", r"IN (SELECT UNNEST(\1))", code,
                      flags=re.I)
        code = re.sub(r"\bUNNEST\s*\(\s*([A-Za-z_][\w.]*)\s*\)(?=\s*(?:\)|,|$|(?:WHERE|GROUP|ORDER|LIMIT|JOIN|"
                      r"CROSS|LEFT|INNER|ON|UNION|HAVING|WINDOW|QUALIFY)\b))",
                      r"(SELECT UNNEST(\1, recursive := true))", code, flags=re.I)
        return re.sub(r"\x00(\d+)\x00", lambda m: held[int(m.group(1))], code), tables

    def _table(self, name: str, location: str | None) -> _Table:
        with self._lock:
            tbl = self._tables.get(name.lower())
            denied = name.lower() in self._denied
        p, d, t = (name.split(".", 2) + ["", ""])[:3]
        if denied:
            raise QueryError(403, "accessDenied", f"Access Denied: Table {p}:{d}.{t}: User does not have permission "
                             f"to query table {p}:{d}.{t}, or perhaps it does not exist.")
        where = location or self.location
        if tbl is None or (location and tbl.location.lower() != location.lower()):
            raise QueryError(404, "notFound", f"Not found: Table {p}:{d}.{t} was not found in location {where}")
        return tbl

    def _job(self, project: str, job_id: str) -> _Job:
        with self._lock:
            job = self._jobs.get((project, job_id))
        if job is None:
            raise QueryError(404, "notFound", f"Not found: Job {project}:{job_id}")
        return job

    def _size(self, requested: Any) -> int:
        return self.page_size if requested in (None, "") else max(0, min(int(requested), self.page_size))

    # -- wire format -----------------------------------------------------------------------------
    def _page(self, job: _Job, start: int, size: int, int64: bool) -> dict[str, Any]:
        rows = job.rows[start:start + size]
        answer: dict[str, Any] = {
            "schema": {"fields": job.fields},
            "jobReference": {"projectId": job.project, "jobId": job.job_id, "location": job.location},
            "totalRows": str(len(job.rows)), "totalBytesProcessed": "0", "jobComplete": True, "cacheHit": False,
        }
        if rows:  # the API leaves "rows" out of an empty page (the client relies on it after maxResults=0)
            answer["rows"] = [_encode_row(job.fields, r, int64) for r in rows]
        if start + size < len(job.rows) and size > 0:
            answer["pageToken"] = base64.urlsafe_b64encode(f"{job.job_id}:{start + size}".encode()).decode()
        return answer

    def _job_resource(self, job: _Job) -> dict[str, Any]:
        ms = str(job.created_ms)
        ref = {"projectId": job.project, "jobId": job.job_id, "location": job.location}
        return {"kind": "bigquery#job", "id": f"{job.project}:{job.location}.{job.job_id}", "jobReference": ref,
                "configuration": {"jobType": "QUERY", "query": {"query": job.query, "useLegacySql": False}},
                "status": {"state": "DONE"},
                "statistics": {"creationTime": ms, "startTime": ms, "endTime": ms, "totalBytesProcessed": "0",
                               "query": {"totalBytesProcessed": "0", "statementType": "SELECT", "cacheHit": False,
                                         "schema": {"fields": job.fields}}}}

    @staticmethod
    def _table_resource(tbl: _Table) -> dict[str, Any]:
        return {"kind": "bigquery#table", "id": f"{tbl.project}:{tbl.dataset}.{tbl.table}", "type": "TABLE",
                "tableReference": {"projectId": tbl.project, "datasetId": tbl.dataset, "tableId": tbl.table},
                "schema": {"fields": list(tbl.schema)}, "numRows": str(tbl.rows), "location": tbl.location,
                "timePartitioning": {"type": "DAY"}}


def _error(status: int, reason: str, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN"),
                      "errors": [{"message": message, "domain": "global", "reason": reason}]}}


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]


def _int64(options: Mapping[str, Any]) -> bool:
    return bool(options.get("useInt64Timestamp"))


def _decode(token: str, job_id: str) -> int:
    try:
        owner, _, offset = base64.urlsafe_b64decode(token.encode()).decode().rpartition(":")
        if owner == job_id:
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise QueryError(400, "invalid", f"Invalid page token: {token}")


def _bq_field(name: str, t: Any) -> dict[str, Any]:
    """A DuckDB result type as a BigQuery schema field."""
    tid = t.id
    if tid == "list":
        inner = _bq_field(name, t.child)
        return inner | {"mode": "REPEATED"}
    if tid == "struct":
        return {"name": name, "type": "RECORD", "mode": "NULLABLE",
                "fields": [_bq_field(n, c) for n, c in t.children]}
    kinds = {"varchar": "STRING", "bigint": "INTEGER", "integer": "INTEGER", "smallint": "INTEGER",
             "tinyint": "INTEGER", "hugeint": "INTEGER", "ubigint": "INTEGER", "uinteger": "INTEGER",
             "double": "FLOAT", "float": "FLOAT", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP",
             "timestamp with time zone": "TIMESTAMP", "blob": "BYTES"}
    if tid == "decimal":
        kind = "BIGNUMERIC" if dict(t.children)["scale"] > 9 else "NUMERIC"
    else:
        kind = kinds.get(tid, "STRING")
    return {"name": name, "type": kind, "mode": "NULLABLE"}


def _encode_row(fields: list[dict[str, Any]], row: Sequence[Any], int64: bool) -> dict[str, Any]:
    return {"f": [{"v": _encode(f, v, int64)} for f, v in zip(fields, row, strict=True)]}


def _encode(f: Mapping[str, Any], value: Any, int64: bool, element: bool = False) -> Any:
    if f.get("mode") == "REPEATED" and not element:
        return [{"v": _encode(f, v, int64, True)} for v in (value or [])]
    if value is None:
        return None
    t = f["type"]
    if t == "RECORD":
        return _encode_row(f["fields"], [value.get(c["name"]) for c in f["fields"]], int64)
    if t == "TIMESTAMP":
        ts = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        micros = (ts - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
        return str(micros) if int64 else _java_double(micros / 1e6)
    if t in ("NUMERIC", "BIGNUMERIC"):
        return format(Decimal(value).normalize(), "f")
    if t == "BOOLEAN":
        return "true" if value else "false"
    if t == "FLOAT":
        return repr(float(value))
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _java_double(seconds: float) -> str:
    """Float seconds as BigQuery writes them without useInt64Timestamp, e.g. ``1.7672256E9``."""
    mantissa, _, exponent = f"{seconds:.9E}".partition("E")
    mantissa = mantissa.rstrip("0")
    return f"{mantissa}{'0' if mantissa.endswith('.') else ''}E{int(exponent)}"


def _parameters(raw: Sequence[Mapping[str, Any]]) -> dict[str, Any] | list[Any]:
    named = {p["name"]: _param_value(p["parameterType"], p.get("parameterValue")) for p in raw if p.get("name")}
    return named or [_param_value(p["parameterType"], p.get("parameterValue")) for p in raw]


def _param_value(ptype: Mapping[str, Any], pvalue: Mapping[str, Any] | None) -> Any:
    t = ptype.get("type", "STRING").upper()
    if t == "ARRAY":
        return [_param_value(ptype["arrayType"], v) for v in (pvalue or {}).get("arrayValues", [])]
    value = (pvalue or {}).get("value")
    if value is None:
        return None
    if t in ("INT64", "INTEGER"):
        return int(value)
    if t in ("FLOAT64", "FLOAT"):
        return float(value)
    if t in ("NUMERIC", "BIGNUMERIC"):
        return Decimal(value)
    if t in ("BOOL", "BOOLEAN"):
        return str(value).lower() == "true"
    if t == "TIMESTAMP":
        text = str(value).replace(" ", "T", 1)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return _utc_naive(parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc))
    if t == "DATETIME":
        return datetime.fromisoformat(str(value).replace(" ", "T", 1))
    if t == "DATE":
        return date.fromisoformat(str(value))
    if t == "STRING":
        return str(value)
    raise QueryError(400, "invalidQuery", f"Query parameters of type {t} are not emulated")
