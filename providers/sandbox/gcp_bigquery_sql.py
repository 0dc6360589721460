"""BigQuery SQL run in DuckDB, and BigQuery's JSON wire encoding, for the ``gcp_bigquery`` emulator.

- Into DuckDB: ``duck_type`` (a BigQuery schema field as a DuckDB column type), ``duck_json`` (a seeded
  row value as JSON for DuckDB's JSON -> typed cast), ``translate`` (the GoogleSQL subset listed in
  ``gcp_bigquery``'s docstring -> DuckDB SQL, and the tables it names) and ``parameters`` (the REST
  ``QueryParameter`` list -> DuckDB parameters), following the GoogleSQL reference (lexical structure,
  data types, query parameters).
- Out of DuckDB, as the BigQuery v2 REST reference spells it: ``bq_field`` (a result column as a
  ``TableFieldSchema``), ``encode_row`` (a row as a ``TableRow`` ``{"f": [{"v": ...}]}``, every scalar a
  string, TIMESTAMP as int64 microseconds or float seconds) and ``error_body`` (Google's error shape).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class QueryError(Exception):
    """A request BigQuery refuses: HTTP ``status`` and the error ``reason`` (``invalidQuery``, ``notFound``, ...)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


def error_body(status: int, reason: str, message: str) -> dict[str, Any]:
    """Google's JSON error shape ``{"error": {"code", "message", "status", "errors": [{"reason", ...}]}}``."""
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN"),
                      "errors": [{"message": message, "domain": "global", "reason": reason}]}}


def first_line(exc: BaseException) -> str:
    """The first line of a DuckDB error (at most 500 characters), for an error message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]


# -- into DuckDB ------------------------------------------------------------------------------
_DUCK = {"STRING": "VARCHAR", "INTEGER": "BIGINT", "INT64": "BIGINT", "FLOAT": "DOUBLE", "FLOAT64": "DOUBLE",
         "NUMERIC": "DECIMAL(38,9)", "BIGNUMERIC": "DECIMAL(38,18)", "BOOLEAN": "BOOLEAN", "BOOL": "BOOLEAN",
         "TIMESTAMP": "TIMESTAMP", "DATETIME": "TIMESTAMP", "DATE": "DATE", "JSON": "VARCHAR"}


def duck_type(f: Mapping[str, Any]) -> str:
    """A BigQuery schema field (``{"name", "type", "mode", "fields"}``) as a DuckDB column type."""
    t = f["type"].upper()
    base = ("STRUCT(" + ", ".join(f'"{c["name"]}" {duck_type(c)}' for c in f["fields"]) + ")"
            if t in ("RECORD", "STRUCT") else _DUCK[t])
    return base + "[]" if f.get("mode") == "REPEATED" else base


def utc_naive(value: Any) -> datetime:
    """An aware datetime or ISO string as a naive UTC datetime (DuckDB's TIMESTAMP); naive input is refused."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"naive timestamp {value.isoformat()}: give UTC-aware times")
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duck_json(f: Mapping[str, Any], value: Any, repeated: bool | None = None) -> Any:
    """``value`` as JSON for DuckDB's JSON -> typed cast (dicts for RECORDs, lists for REPEATED)."""
    t = f["type"].upper()
    if repeated is None:
        repeated = f.get("mode") == "REPEATED"
    if repeated:
        if value is None:
            return []
        if isinstance(value, Mapping) and [c["name"] for c in f.get("fields", ())][:2] == ["key", "value"]:
            value = [{"key": k, "value": v} for k, v in value.items()]  # labels given as a plain dict
        return [duck_json(f, v, False) for v in value]
    if value is None:
        return None
    if t in ("RECORD", "STRUCT"):
        unknown = set(value) - {c["name"] for c in f["fields"]}
        if unknown:
            raise ValueError(f"{f['name']}: unknown field(s) {', '.join(sorted(unknown))}")
        return {c["name"]: duck_json(c, value.get(c["name"])) for c in f["fields"]}
    if t in ("TIMESTAMP", "DATETIME"):
        return utc_naive(value).isoformat(sep=" ")
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


def translate(sql: str, project: str) -> tuple[str, list[str]]:
    """BigQuery SQL (the subset in ``gcp_bigquery``'s docstring) -> DuckDB SQL, and the tables it names."""
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


def parameters(raw: Sequence[Mapping[str, Any]]) -> dict[str, Any] | list[Any]:
    """REST ``queryParameters`` as DuckDB parameters: a dict for named (``@name``), a list for positional."""
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
        return utc_naive(parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc))
    if t == "DATETIME":
        return datetime.fromisoformat(str(value).replace(" ", "T", 1))
    if t == "DATE":
        return date.fromisoformat(str(value))
    if t == "STRING":
        return str(value)
    raise QueryError(400, "invalidQuery", f"Query parameters of type {t} are not emulated")


# -- out of DuckDB: the JSON wire format -------------------------------------------------------
def bq_field(name: str, t: Any) -> dict[str, Any]:
    """A DuckDB result type as a BigQuery schema field."""
    tid = t.id
    if tid == "list":
        inner = bq_field(name, t.child)
        return inner | {"mode": "REPEATED"}
    if tid == "struct":
        return {"name": name, "type": "RECORD", "mode": "NULLABLE",
                "fields": [bq_field(n, c) for n, c in t.children]}
    kinds = {"varchar": "STRING", "bigint": "INTEGER", "integer": "INTEGER", "smallint": "INTEGER",
             "tinyint": "INTEGER", "hugeint": "INTEGER", "ubigint": "INTEGER", "uinteger": "INTEGER",
             "double": "FLOAT", "float": "FLOAT", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP",
             "timestamp with time zone": "TIMESTAMP", "blob": "BYTES"}
    if tid == "decimal":
        kind = "BIGNUMERIC" if dict(t.children)["scale"] > 9 else "NUMERIC"
    else:
        kind = kinds.get(tid, "STRING")
    return {"name": name, "type": kind, "mode": "NULLABLE"}


def encode_row(fields: list[dict[str, Any]], row: Sequence[Any], int64: bool) -> dict[str, Any]:
    """A result row as a ``TableRow``; ``int64``: TIMESTAMP as int64 microseconds (``useInt64Timestamp``)."""
    return {"f": [{"v": _encode(f, v, int64)} for f, v in zip(fields, row, strict=True)]}


def _encode(f: Mapping[str, Any], value: Any, int64: bool, element: bool = False) -> Any:
    if f.get("mode") == "REPEATED" and not element:
        return [{"v": _encode(f, v, int64, True)} for v in (value or [])]
    if value is None:
        return None
    t = f["type"]
    if t == "RECORD":
        return encode_row(f["fields"], [value.get(c["name"]) for c in f["fields"]], int64)
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
