"""The digest's findings as CSV: one row per finding, one column per field of ``reports.digest.Finding``.

Savings are plain decimals (``10162.40``: no currency sign, no thousands separator) and confidence a plain
number, so a spreadsheet reads both as numbers. Text cells follow the OWASP guidance on CSV injection: a cell
that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or a line feed) gets a single quote in
front, so no spreadsheet evaluates it as a formula; the csv module quotes cells holding commas, quotes or line
breaks. Rows end in ``\\n``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import fields
from decimal import Decimal

from reports.digest import Digest, Finding

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Finding))
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_text(value: str | None) -> str:
    """A text cell: "" for None, a leading ``'`` where the text could start a formula."""
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # never 1E+3
    if isinstance(value, (int, float)):
        return repr(value)
    return csv_text(None if value is None else str(value))


def render_csv(digest: Digest) -> str:
    """Every finding of ``digest`` (ranked by savings) as CSV with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for finding in digest.findings:
        writer.writerow(_cell(getattr(finding, name)) for name in COLUMNS)
    return out.getvalue()


__all__ = ["COLUMNS", "csv_text", "render_csv"]
