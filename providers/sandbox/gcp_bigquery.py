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

The SQL subset, executed by DuckDB after translation (keep queries inside it): table names in
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

The SQL translation and the JSON wire encoding (schema fields, rows, errors) live in ``gcp_bigquery_sql``,
the billing export schemas and row defaults in ``gcp_billing_export``.
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
from typing import Any

import duckdb

from providers.sandbox.gcp_bigquery_sql import (QueryError, bq_field, duck_json, duck_type, encode_row, error_body,
                                                first_line, parameters, translate)
from providers.sandbox.gcp_billing_export import DETAILED_SCHEMA, FOCUS_SCHEMA, STANDARD_SCHEMA, billing_row, focus_row
from providers.sandbox.json_server import JsonApiServer, Request, Response

PREFIX = "/bigquery/v2/projects/"
DEFAULT_PAGE_SIZE = 25  # real BigQuery pages by ~10 MB; small here so clients page
_REASON = {400: "invalid", 401: "authError", 403: "accessDenied", 404: "notFound", 409: "duplicate",
           429: "rateLimitExceeded", 500: "internalError", 503: "backendError"}


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
            values.append({f["name"]: duck_json(f, row.get(f["name"])) for f in fields})
        ident = f'"{tbl.full}"'
        columns = ", ".join(f'"{f["name"]}" {duck_type(f)}' for f in fields)
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
        prepared = [billing_row(r) for r in rows]
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
        self.add_table(project, dataset, table, FOCUS_SCHEMA, [focus_row(r) for r in rows], location=location)

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
        return error_body(status, _REASON.get(status, "invalid"), message)

    # -- API -----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if not request.path.startswith(PREFIX):
            return Response(404, error_body(404, "notFound", f"Not found: URL {request.path}"))
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
            return Response(exc.status, error_body(exc.status, exc.reason, str(exc)))
        except ValueError as exc:
            return Response(400, error_body(400, "invalid", f"Invalid request: {exc}"))
        return Response(404, error_body(404, "notFound", f"Not found: {method} {request.path}"))

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
        sql, tables = translate(str(config.get("query", "")), project)
        if not re.match(r"\s*\(*\s*(SELECT|WITH)\b", sql, flags=re.I):
            raise QueryError(400, "invalidQuery", "Only queries (SELECT / WITH) are emulated")
        where = location
        for name in tables:
            where = self._table(name, where).location
        params = parameters(config.get("queryParameters") or [])
        with self._db_lock:
            try:
                db = self._database()
                rel = db.sql(sql, params=params) if params else db.sql(sql)
                names, types = list(rel.columns), list(rel.types)
                rows = rel.fetchall() if "TIME ZONE" not in " ".join(map(str, types)) else rel.project(
                    ", ".join(f'CAST("{n}" AS TIMESTAMP) AS "{n}"' if "TIME ZONE" in str(t) else f'"{n}"'
                              for n, t in zip(names, types, strict=True))).fetchall()
            except duckdb.CatalogException as exc:
                raise QueryError(404, "notFound", f"Not found: {first_line(exc)}") from exc
            except duckdb.Error as exc:
                raise QueryError(400, "invalidQuery", first_line(exc)) from exc
        job = _Job(project, job_id or f"emulated_job_{next(self._ids)}", where or self.location,
                   str(config.get("query", "")), [bq_field(n, t) for n, t in zip(names, types, strict=True)], rows)
        with self._lock:
            self._jobs[(project, job.job_id)] = job
        return job

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
            answer["rows"] = [encode_row(job.fields, r, int64) for r in rows]
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
