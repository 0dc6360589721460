"""SQL expressions over one file's columns, whatever their stored type.

A mapping asks for a source column as money, number, text or time; ``Columns`` answers with a DuckDB
expression of the canonical type that works for the column's actual type (CSV columns are typed by the
reader, Parquet columns come typed by the writer) or with a typed ``NULL`` when the file lacks it.

Money is ``DECIMAL(38,18)`` throughout: sums stay exact (DuckDB adds decimals as 128-bit integers)
and 20 integer digits hold any bill. Floats from Parquet go through their shortest text form, so
``0.1`` stays 0.1 and does not become 0.1000000000000000055.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

MONEY = "DECIMAL(38,18)"
NUMBER = "DOUBLE"
TIME = "TIMESTAMP"  # naive, always UTC: the connection's TimeZone is UTC

_FLOATS = ("FLOAT", "DOUBLE", "REAL")
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Columns:
    """The columns of one file: ``types`` maps each actual column name to its DuckDB type.

    ``key`` turns an actual name into the name mappings use (lower case; CUR 1.0 names become their
    CUR 2.0 spelling), so one mapping serves every spelling of a format.
    """

    def __init__(self, types: Mapping[str, str], key: Callable[[str], str] = str.lower) -> None:
        self.types = dict(types)
        self._by_key: dict[str, str] = {}
        for name in types:
            self._by_key.setdefault(key(name), name)

    def name(self, key: str) -> str | None:
        """The actual column name for ``key`` (already in the mapping's spelling), or None."""
        return self._by_key.get(key.lower())

    def has(self, *keys: str) -> bool:
        return any(self.name(k) for k in keys)

    def _first(self, keys: tuple[str, ...]) -> tuple[str, str] | None:
        for k in keys:
            actual = self.name(k)
            if actual is not None:
                return actual, self.types[actual].upper()
        return None

    def money(self, *keys: str) -> str:
        """The first present column as ``DECIMAL(38,18)``; NULL where it does not parse."""
        found = self._first(keys)
        if found is None:
            return f"CAST(NULL AS {MONEY})"
        col, typ = quote(found[0]), found[1]
        if typ == MONEY:
            return col
        if typ.startswith("DECIMAL") or typ in _INTEGERS:
            return f"TRY_CAST({col} AS {MONEY})"
        if typ in _FLOATS:
            return f"TRY_CAST(CAST({col} AS VARCHAR) AS {MONEY})"
        return f"TRY_CAST(NULLIF(TRIM(CAST({col} AS VARCHAR)), '') AS {MONEY})"

    def number(self, *keys: str) -> str:
        found = self._first(keys)
        if found is None:
            return f"CAST(NULL AS {NUMBER})"
        col, typ = quote(found[0]), found[1]
        if typ == NUMBER:
            return col
        if typ.startswith("DECIMAL") or typ in _INTEGERS or typ in _FLOATS:
            return f"CAST({col} AS {NUMBER})"
        return f"TRY_CAST(NULLIF(TRIM(CAST({col} AS VARCHAR)), '') AS {NUMBER})"

    def text(self, *keys: str) -> str:
        """The first present column as trimmed text, empty meaning NULL; NULL if none is present."""
        parts = []
        for k in keys:
            actual = self.name(k)
            if actual is not None:
                parts.append(f"NULLIF(TRIM(CAST({quote(actual)} AS VARCHAR)), '')")
        if not parts:
            return "CAST(NULL AS VARCHAR)"
        return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"

    def time(self, *keys: str) -> str:
        """The first present column as a UTC ``TIMESTAMP``; NULL where it does not parse."""
        found = self._first(keys)
        if found is None:
            return f"CAST(NULL AS {TIME})"
        col, typ = quote(found[0]), found[1]
        if typ in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"):
            return f"CAST({col} AS {TIME})"  # a naive timestamp in a billing export is UTC
        if typ in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "DATE"):
            return f"CAST({col} AS {TIME})"  # TimeZone is UTC, so this is the UTC wall time
        text = f"NULLIF(TRIM(CAST({col} AS VARCHAR)), '')"
        return (f"COALESCE(CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS {TIME}), "
                f"CAST(try_strptime({text}, '%m/%d/%Y') AS {TIME}))")

    def json_text(self, key: str, path: str) -> str:
        """``path`` (a JSON path like ``$.ServiceType``) inside a JSON text or MAP column; NULL otherwise."""
        actual = self.name(key)
        if actual is None:
            return "CAST(NULL AS VARCHAR)"
        col, typ = quote(actual), self.types[actual].upper()
        if typ.startswith("MAP("):
            return f"NULLIF(map_extract_value({col}, {literal(path.removeprefix('$.'))}), '')"
        if typ.startswith("STRUCT("):
            return "CAST(NULL AS VARCHAR)"
        text = f"CAST({col} AS VARCHAR)"
        return f"CASE WHEN json_valid({text}) THEN NULLIF(json_extract_string({text}, {literal(path)}), '') END"


def instance_type_from(text_expr: str) -> str:
    """An instance or VM type found in free text (a usage type, a charge or SKU description).

    AWS ``g5.4xlarge`` (not the ``db.``/``cache.`` prefixes), Azure ``Standard_NC24ads_A100_v4``, GCP
    ``a2-highgpu-1g``. The patterns are RE2 (DuckDB), so a leading non-word group stands in for ``\\b``.
    """
    aws = (r"(?:^|[^A-Za-z0-9.])([a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(?:nano|micro|small|medium|large|[0-9]*xlarge"
           r"|metal(?:-[0-9]+xl)?))(?:$|[^A-Za-z0-9])")
    azure = r"((?:Standard|Basic)_[A-Za-z0-9_]+)"
    gcp = r"(?:^|[^A-Za-z0-9])([a-z][0-9][a-z]?-(?:standard|highmem|highcpu|highgpu|megagpu|ultragpu|edgegpu)-[0-9]+g?)"
    parts = [f"NULLIF(regexp_extract({text_expr}, {literal(p)}, 1), '')" for p in (aws, azure, gcp)]
    return f"COALESCE({', '.join(parts)})"
