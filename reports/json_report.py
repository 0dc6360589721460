"""The JSON renderer: ``to_dict`` serialized, described by ``schema/audit-report.v1.json``."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from providers.model import utc
from reports.model import AuditReport, to_dict


def _json_default(value: Any) -> Any:
    """Serialize what ``json`` cannot: Decimal as a number, datetime as ISO-8601 UTC with ``Z``."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return utc(value).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__module__}.{type(value).__qualname__} is not JSON serializable in a report")


def render_json(report: AuditReport) -> str:
    """The report as pretty-printed JSON, ending in a newline.

    NaN and infinities are refused (``ValueError``): they are not JSON, and strict parsers reject them.
    """
    return json.dumps(to_dict(report), indent=2, default=_json_default, allow_nan=False) + "\n"
