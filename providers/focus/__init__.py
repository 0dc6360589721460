"""Billing ingestion: FOCUS 1.0+ exports and the native exports we meet, mapped onto FOCUS, in DuckDB.

Cloud-neutral: reads local files, folders and globs (CSV, gzip CSV, Parquet) and ``s3://`` URLs (through
``providers.aws.storage``). See docs/billing.md for the formats, the column mappings, bad rows and the
memory bounds.

    from providers.focus import read_billing
    data = read_billing(["exports/", "s3://bucket/cur/"], memory_limit="1GB")
"""

from __future__ import annotations

from providers.focus.errors import BillingError
from providers.focus.formats import Format, detect
from providers.focus.reader import read_billing

__all__ = ["BillingError", "Format", "detect", "read_billing"]
