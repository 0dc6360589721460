"""The lines of a CSV file whose required values are empty, for reporting bad rows with their place.

DuckDB's CSV reader gives the line of every row it rejects, but a row it accepts carries no line
number. An empty required value (no BilledCost, no charge period) is accepted as NULL and found bad
only after mapping; DuckDB counts those rows exactly, and this module finds their lines by streaming
the file once more with Python's ``csv`` module (only for files that have such rows, only until
``limit`` lines are found). Empty means what the reader treats as NULL: ``""``, ``NULL``, ``null``.

(DuckDB 2.0's ``force_not_null`` would make the reader reject these rows itself, but it marks the wrong
columns when the query reads a subset of the columns, so it is not used.)
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Sequence
from pathlib import Path

from providers.focus.headers import open_text

NULL_TOKENS = ("", "NULL", "null")


def empty_required(path: Path, compression: str, names: Sequence[str], required: Sequence[str],
                   skip: Collection[int], limit: int) -> list[tuple[int, str]]:
    """(line, column) of the first ``limit`` records with an empty required column, lines in ``skip`` left out.

    Lines are 1-based physical lines (the header is line 1) where each record starts.
    """
    index = [(names.index(col), col) for col in required if col in names]
    found: list[tuple[int, str]] = []
    if not index or limit <= 0:
        return found
    with open_text(path, compression) as text:
        reader = csv.reader(text)
        next(reader, None)
        previous = reader.line_num
        for row in reader:
            start, previous = previous + 1, reader.line_num
            if not row or start in skip:
                continue
            for i, col in index:
                if (row[i].strip() if i < len(row) else "") in NULL_TOKENS:
                    found.append((start, col))
                    break
            if len(found) >= limit:
                break
    return found
