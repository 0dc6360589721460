"""What a local billing file is before its rows are read: CSV or Parquet, compression, column names.

A CSV header is read with Python's ``csv`` module (UTF-8, a byte-order mark dropped, gzip by magic
bytes, whatever the extension says), together with the first data row so a mapping can tell how the
file writes its dates. A Parquet schema comes from DuckDB (``DESCRIBE``), with the stored types.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from providers.focus.columns import literal
from providers.focus.errors import BillingError

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
SAMPLE_ROWS = 50  # data rows looked at for a first non-empty value per column


@dataclass(frozen=True)
class FileHeader:
    kind: str  # "csv" | "parquet"
    names: tuple[str, ...]
    types: dict[str, str] = field(default_factory=dict)  # Parquet: stored types; CSV: empty (the mapping types it)
    compression: str = "none"  # CSV: "gzip" | "none"
    sample: dict[str, str] = field(default_factory=dict)  # CSV: a first non-empty value per column


@contextmanager
def open_text(path: Path, compression: str) -> Iterator[TextIO]:
    """A CSV file as text: gzip or not, UTF-8 with its byte-order mark dropped, undecodable bytes replaced."""
    opener = gzip.open if compression == "gzip" else open
    with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="") as text:
        yield text


def read_header(path: Path, display: str, con: Any) -> FileHeader:
    """The header of ``path``; ``display`` names the file in errors; ``con`` is a DuckDB connection."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise BillingError(display, f"cannot open: {exc.strerror or exc}") from exc
    if not magic:
        raise BillingError(display, "empty file (no header)")
    if magic == PARQUET_MAGIC:
        return _parquet(path, display, con)
    return _csv(path, display, "gzip" if magic[:2] == GZIP_MAGIC else "none")


def _parquet(path: Path, display: str, con: Any) -> FileHeader:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(str(path))})").fetchall()
    except Exception as exc:
        raise BillingError(display, f"unreadable Parquet: {exc}") from exc
    names = tuple(str(r[0]) for r in rows)
    return FileHeader("parquet", names, {str(r[0]): str(r[1]) for r in rows})


def _csv(path: Path, display: str, compression: str) -> FileHeader:
    try:
        with open_text(path, compression) as text:
            reader = csv.reader(text)
            names = next(reader, None)
            if not names or not any(n.strip() for n in names):
                raise BillingError(display, "empty file (no header)")
            sample: dict[str, str] = {}
            for i, row in enumerate(reader):
                for name, value in zip(names, row):
                    if name not in sample and value.strip() and value.strip().lower() != "null":
                        sample[name] = value.strip()
                if i + 1 >= SAMPLE_ROWS or len(sample) == len(names):
                    break
    except (OSError, EOFError, zlib.error, csv.Error) as exc:
        raise BillingError(display, f"unreadable CSV: {exc}") from exc
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise BillingError(display, f"duplicate column names in the header: {', '.join(dupes)}")
    return FileHeader("csv", tuple(names), compression=compression, sample=sample)
