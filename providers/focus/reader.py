"""``read_billing``: billing exports in, one ``BillingData`` out.

Steps, file by file: expand the paths (files, folders, globs, ``s3://``) -> read the file's header and
tell its format -> load its rows as FOCUS into DuckDB and sum them into partial aggregates (one
transaction per file) -> at the end, merge the partials into the records.

Bad-file policy: by default a file (or path) that cannot be read at all — missing, empty, an unknown
header, a truncated gzip, a corrupt Parquet — is skipped and reported as one bad row with line 0 and a
reason starting "file skipped:" (listed before the row-level examples); the other files' rows are kept.
With ``strict=True`` the first such file raises ``BillingError`` instead. When no file at all could be
read, ``BillingError`` is raised either way. Bad *rows* never raise: they are counted, the first
``EXAMPLES`` kept with file and line, and left out of every total.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from providers.focus import aggregates, staging
from providers.focus.aws_cur import CUR1, CUR2
from providers.focus.azure_export import AZURE
from providers.focus.errors import BillingError
from providers.focus.focus_export import FOCUS
from providers.focus.formats import Format, detect
from providers.focus.headers import read_header
from providers.focus.mapping import Mapping
from providers.focus.sources import Source, expand
from providers.model import BadRow, BillingData

log = logging.getLogger(__name__)

EXAMPLES = 20  # bad rows kept with file, line and reason
MAPPINGS: dict[Format, Mapping] = {Format.FOCUS: FOCUS, Format.AWS_CUR1: CUR1, Format.AWS_CUR2: CUR2,
                                   Format.AZURE: AZURE}


def read_billing(paths: Sequence[str], *, aws_clients: Any = None, gcp_clients: Any = None, azure_clients: Any = None,
                 temp_dir: str | Path | None = None, memory_limit: str = "1GB", strict: bool = False,
                 threads: int | None = None) -> BillingData:
    """Read FOCUS 1.0+, AWS CUR 1.0/2.0 and Azure cost-details exports (CSV, gzip CSV, Parquet).

    ``paths``: local files, folders, globs and ``s3://bucket/prefix`` URLs (read through
    ``aws_clients``, an ``AwsClients``; a default one, with the standard credential chain, when None) and
    ``gs://bucket/prefix`` URLs (through ``gcp_clients``, a ``GcpClients``, likewise) and Azure Blob URLs
    (``https://<account>.blob.core.windows.net/<container>/<prefix>``, ``abfss://...``: through
    ``azure_clients``, an ``AzureClients``, likewise; see ``providers.azure.storage``).
    ``temp_dir``: where the working folder goes (S3 downloads, one at a time, and DuckDB's spill
    files); the system's temporary folder when None; removed afterwards. ``memory_limit``: DuckDB's limit ("1GB", "512MB").
    ``strict``: raise on the first unreadable file instead of skipping it (see the module docstring).
    """
    if isinstance(paths, str):
        paths = [paths]
    if not paths:
        raise BillingError("(no paths)", "no billing paths given")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="costagent-billing-", dir=temp_dir))
    try:
        clients = {"aws_clients": aws_clients, "gcp_clients": gcp_clients, "azure_clients": azure_clients}
        return _read(list(paths), work, clients, memory_limit, strict, threads, started)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read(paths: list[str], work: Path, clients: dict[str, Any], memory_limit: str, strict: bool,
          threads: int | None, started: float) -> BillingData:
    skipped: list[BadRow] = []

    def skip(error: BillingError) -> None:
        if strict:
            raise error
        log.warning("billing file skipped: %s", error.one_line())
        skipped.append(BadRow(error.file, error.line or 0, f"file skipped: {error.reason}"))

    downloads = work / "s3"
    con = staging.connect(work, memory_limit, threads)
    try:
        read: list[str] = []
        seen: set[Path] = set()
        rows, bad, examples = 0, 0, []
        for raw in paths:
            try:  # files are read as they come: an S3 object is downloaded, loaded and deleted in turn
                for src in expand(raw, **clients, download_to=downloads):
                    if src.path.resolve() in seen:
                        continue  # reached twice (a folder and a glob over it): read once
                    seen.add(src.path.resolve())
                    try:
                        loaded = _load(con, src)
                    except BillingError as exc:
                        skip(exc)
                        continue
                    finally:
                        if src.path.is_relative_to(downloads):
                            src.path.unlink(missing_ok=True)
                    read.append(src.display)
                    rows, bad = rows + loaded.rows, bad + loaded.bad
                    examples.extend(loaded.examples)
            except BillingError as exc:  # the path itself (nothing there, S3 refused): its earlier files stay
                skip(exc)
        if not read:
            first = skipped[0] if skipped else BadRow(", ".join(paths), 0, "no billing files")
            raise BillingError(first.file, f"no billing file could be read: {first.reason}")
        return _aggregate(con, read, skipped, rows, bad, examples, started)
    finally:
        con.close()


def _load(con: Any, src: Source) -> staging.FileLoad:
    header = read_header(src.path, src.display, con)
    mapping = MAPPINGS[detect(header.names, src.display)]
    return staging.load(con, src.path, src.display, header, mapping, EXAMPLES)


def _aggregate(con: Any, read: list[str], skipped: list[BadRow], rows: int, bad: int, examples: list[BadRow],
               started: float) -> BillingData:
    window, currencies = aggregates.summary(con)
    if len(currencies) > 1:
        log.warning("billing exports in several currencies (%s): totals add them without conversion",
                    ", ".join(currencies))
    data = BillingData(
        sources=tuple(read),
        rows=rows + len(skipped),
        bad_rows=bad + len(skipped),
        bad_examples=tuple((skipped + examples)[:EXAMPLES]),
        totals=aggregates.totals(con),
        resources=aggregates.resources(con),
        commitments=aggregates.commitments(con),
        hourly=aggregates.hourly(con),
        currency=",".join(currencies) if currencies else "USD",
        window=window,
    )
    log.info("billing read files=%d rows=%d bad=%d resources=%d seconds=%.2f", len(read), data.rows,
             data.bad_rows, len(data.resources), time.monotonic() - started)
    return data
