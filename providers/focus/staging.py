"""Billing files loaded one at a time as FOCUS rows into DuckDB, every bad row accounted for.

DuckDB runs in memory with ``memory_limit`` set and a temporary folder as its spill directory. Each
file's rows are parsed and mapped once into a table, summed into the partial aggregates
(``aggregates.fold``) and dropped: memory is bounded by one file's rows (and spills past the limit),
not by the export's.

Each file loads in its own transaction: a file that fails half-way (a truncated gzip, a corrupt
Parquet page) leaves no rows and no partial sums behind, so nothing is counted twice or half. Bad
rows, two kinds:

- CSV lines DuckDB's reader rejects (``store_rejects``: wrong number of columns, an unterminated
  quote, a cost that is not a number, a date that is not a date): they never reach the table; the
  rejects table gives file and line.
- rows that map to no cost or no charge period (an empty required CSV value, a Parquet value that does
  not parse): staged with a ``bad`` reason, which every aggregate skips. Parquet gives their row
  number; a CSV file's lines are found by ``csv_lines``.

Casts are never pushed into the CSV reader (DuckDB's ``type_pushdown`` optimizer would parse
``CAST(date_column AS TIMESTAMPTZ)`` from the raw text, ignoring the file's date format).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from providers.errors import ConfigurationError
from providers.focus import aggregates
from providers.focus.columns import MONEY, NUMBER, Columns, literal, quote
from providers.focus.csv_lines import empty_required
from providers.focus.errors import BillingError
from providers.focus.headers import FileHeader
from providers.focus.mapping import REQUIRED_AFTER_MAPPING, Mapping, hours_unit
from providers.model import BadRow

log = logging.getLogger(__name__)

TABLE = "file_rows"  # one file's rows, folded into the partial aggregates and dropped
REJECTS = "billing_rejects"
REJECT_SCANS = "billing_reject_scans"

#: The columns the aggregates use (the mapping yields more FOCUS columns; DuckDB skips computing the rest).
SCHEMA = f"""
CREATE OR REPLACE TABLE {TABLE} (
    line BIGINT, bad VARCHAR,
    provider VARCHAR, service VARCHAR, charge_category VARCHAR, pricing_category VARCHAR,
    period_start TIMESTAMP, period_end TIMESTAMP,
    billed {MONEY}, effective {MONEY}, list {MONEY},
    resource_id VARCHAR, region VARCHAR, instance_type VARCHAR,
    consumed_unit VARCHAR, hours {NUMBER},
    commitment_id VARCHAR, commitment_type VARCHAR, commitment_status VARCHAR, currency VARCHAR
)"""

_MDY = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$")
_YMD = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class FileLoad:
    rows: int  # rows read: staged (good, and bad after mapping) and rejected by the CSV reader
    bad: int  # rejected by the reader + staged with a bad reason
    examples: tuple[BadRow, ...]  # the first bad rows, by line


def connect(folder: Path, memory_limit: str, threads: int | None = None) -> Any:
    """An in-memory DuckDB limited to ``memory_limit`` that spills to ``folder``; times in UTC.

    An in-memory table moves its blocks to the spill folder once the limit is reached (and is not
    compressed on the way in, which makes loading about twice as fast as a database file).
    """
    config = {"memory_limit": memory_limit, "temp_directory": str(folder / "spill"),
              "preserve_insertion_order": False}
    if threads:
        config["threads"] = threads
    try:
        con = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:  # a memory limit DuckDB does not understand, a folder it cannot use
        raise ConfigurationError(f"billing: DuckDB refused its settings: {_first_line(exc)}",
                                 hint='memory_limit is written like "1GB" or "512MB"') from exc
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    if con.execute("SELECT count(*) FROM duckdb_optimizers() WHERE name = 'type_pushdown'").fetchone()[0]:
        con.execute("SET disabled_optimizers = 'type_pushdown'")
    con.execute(aggregates.PARTIALS)
    return con


def csv_types(header: FileHeader, mapping: Mapping) -> tuple[dict[str, str], str | None]:
    """The DuckDB type of every CSV column and the file's date format (None: ISO dates)."""
    types: dict[str, str] = {}
    date_format: str | None = None
    for name in header.names:
        key = mapping.key(name)
        if key in mapping.money:
            types[name] = MONEY
        elif key in mapping.numbers:
            types[name] = NUMBER
        elif key in mapping.times:
            types[name] = "TIMESTAMPTZ"
        elif key in mapping.dates:
            first = header.sample.get(name, "")
            if _MDY.match(first):
                types[name], date_format = "DATE", "%m/%d/%Y"
            else:
                types[name] = "DATE" if _YMD.match(first) else "TIMESTAMPTZ"
        else:
            types[name] = "VARCHAR"
    return types, date_format


def _csv_source(path: Path, header: FileHeader, types: dict[str, str], date_format: str | None) -> str:
    columns = "{" + ", ".join(f"{literal(n)}: {literal(t)}" for n, t in types.items()) + "}"
    options = [f"columns = {columns}", "header = true", "auto_detect = false", "delim = ','", "quote = '\"'",
               "escape = '\"'", "nullstr = ['NULL', 'null', '']", f"compression = '{header.compression}'",
               "store_rejects = true", f"rejects_table = '{REJECTS}'", f"rejects_scan = '{REJECT_SCANS}'"]
    if date_format:
        options.append(f"dateformat = {literal(date_format)}")
    return f"read_csv({literal(str(path))}, {', '.join(options)})"


def _insert_sql(source: str, line: str, exprs: dict[str, str]) -> str:
    inner = ",\n  ".join(f"{e} AS {quote(c)}" for c, e in exprs.items())
    checks = ", ".join(
        f"CASE WHEN {quote(c)} IS NULL THEN '{c} missing or not "
        f"{'a number' if 'Cost' in c else 'a date/time'}' END" for c in REQUIRED_AFTER_MAPPING)
    return f"""
INSERT INTO {TABLE}
SELECT line, NULLIF(concat_ws('; ', {checks}), ''),
  "ProviderName", "ServiceName", "ChargeCategory", "PricingCategory",
  "ChargePeriodStart", "ChargePeriodEnd", "BilledCost", "EffectiveCost", "ListCost",
  "ResourceId", "RegionId", "x_InstanceType",
  "ConsumedUnit", CASE WHEN {hours_unit('"ConsumedUnit"')} THEN "ConsumedQuantity" END,
  "CommitmentDiscountId", COALESCE("CommitmentDiscountType", "CommitmentDiscountCategory"),
  "CommitmentDiscountStatus", "BillingCurrency"
FROM (SELECT
  {inner},
  {line} AS line
FROM {source})"""


def load(con: Any, path: Path, display: str, header: FileHeader, mapping: Mapping,
         example_limit: int) -> FileLoad:
    """Stage one file's rows; raises ``BillingError`` (and stages nothing) when the file cannot be read."""
    types: dict[str, str] = {}
    if header.kind == "parquet":
        cols = Columns(header.types, mapping.key)
        source = f"read_parquet({literal(str(path))}, file_row_number = true)"
        line = "file_row_number + 1"
    else:
        types, date_format = csv_types(header, mapping)
        cols = Columns(types, mapping.key)
        source = _csv_source(path, header, types, date_format)
        line = "CAST(NULL AS BIGINT)"
    sql = _insert_sql(source, line, mapping.expressions(cols))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(SCHEMA)
        if header.kind == "csv":
            con.execute(f"DROP TABLE IF EXISTS {REJECTS}")
            con.execute(f"DROP TABLE IF EXISTS {REJECT_SCANS}")
        staged = int(con.execute(sql).fetchone()[0])
        rejected, rejects = _rejects(con, display, example_limit, types) if header.kind == "csv" else (0, ())
        mapped_bad = int(con.execute(f"SELECT count(*) FROM {TABLE} WHERE bad IS NOT NULL").fetchone()[0])
        examples = list(rejects)
        if mapped_bad and header.kind == "parquet":
            examples += _staged_examples(con, display, example_limit)
        rejected_lines = _rejected_lines(con) if mapped_bad and rejected else set()
        aggregates.fold(con, TABLE)
        con.execute(f"DROP TABLE {TABLE}")
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise BillingError(display, _first_line(exc)) from exc
    if mapped_bad and header.kind == "csv":
        examples += _csv_examples(path, display, header, mapping, rejected_lines, example_limit)
    log.debug("billing staged file=%s format=%s rows=%d rejected=%d bad_after_mapping=%d",
              display, mapping.format, staged, rejected, mapped_bad)
    return FileLoad(staged + rejected, rejected + mapped_bad,
                    tuple(sorted(examples, key=lambda b: b.line)[:example_limit]))


def _staged_examples(con: Any, display: str, limit: int) -> list[BadRow]:
    rows = con.execute(f"SELECT line, bad FROM {TABLE} WHERE bad IS NOT NULL "
                       f"ORDER BY line LIMIT {int(limit)}").fetchall()
    return [BadRow(display, int(line) if line is not None else 0, str(reason)) for line, reason in rows]


def _rejected_lines(con: Any) -> set[int]:
    return {int(n) for (n,) in con.execute(f"SELECT DISTINCT line FROM {REJECTS}").fetchall()}


def _csv_examples(path: Path, display: str, header: FileHeader, mapping: Mapping, rejected_lines: set[int],
                  limit: int) -> list[BadRow]:
    required = mapping.required_columns(header.names)
    try:
        found = empty_required(path, header.compression, header.names, required, rejected_lines, limit)
    except (OSError, EOFError, zlib.error, csv.Error) as exc:  # the rows are counted; only their lines are lost
        log.warning("billing could not locate bad lines file=%s error=%s", display, exc)
        found = []
    if not found:
        return [BadRow(display, 0, "rows without a cost or a charge period (lines not found)")]
    return [BadRow(display, line, f"{col} is empty: the row has no {_feeds(mapping, col)}") for line, col in found]


def _feeds(mapping: Mapping, column: str) -> str:
    key = mapping.key(column)
    return "charge period" if key in mapping.times or key in mapping.dates else "cost"


def _rejects(con: Any, display: str, limit: int, types: dict[str, str]) -> tuple[int, tuple[BadRow, ...]]:
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [REJECTS]).fetchone()[0]
    if not exists:
        return 0, ()
    count = int(con.execute(f"SELECT count(DISTINCT line) FROM {REJECTS}").fetchone()[0])
    rows = con.execute(f"""
        SELECT line, error_type, error_message, csv_line FROM (
            SELECT *, row_number() OVER (PARTITION BY line ORDER BY column_idx) AS n FROM {REJECTS})
        WHERE n = 1 ORDER BY line LIMIT {int(limit)}""").fetchall()
    return count, tuple(BadRow(display, int(line), _reason(str(kind), msg, text, types))
                        for line, kind, msg, text in rows)


_CAST = re.compile(r'Could not convert string "(?P<value>.*)" to \'(?P<type>[^\']+)\'', re.DOTALL)
_TYPES = {"DECIMAL": MONEY, "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ", "DATE": "DATE", "DOUBLE": NUMBER}


def _reason(kind: str, message: str | None, csv_line: str | None, types: dict[str, str]) -> str:
    """The reason of a rejected CSV line, naming the column whose value did not convert.

    DuckDB 2.0's reject table can name the wrong column when the query reads a subset of the file's
    columns, so the column is found here: the one of the target type holding the unconvertible value.
    """
    text = (message or "").strip()
    found = _CAST.search(text)
    if kind != "CAST" or found is None:
        return f"{kind}: {text.split('. ', 1)[-1] if text.startswith('Error when converting') else text}"
    value, target = found.group("value"), _TYPES.get(found.group("type"), "")
    fields = next(csv.reader(io.StringIO(csv_line or "")), [])
    column = next((name for name, field in zip(types, fields) if types[name] == target and field == value), None)
    detail = f'could not convert "{value}" to {found.group("type")}'
    return f"CAST {column}: {detail}" if column else f"CAST: {detail}"


def _first_line(exc: BaseException) -> str:
    lines = [s for s in str(exc).splitlines() if s.strip()]
    return lines[0] if lines else type(exc).__name__
