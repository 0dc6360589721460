"""Compute Engine v1 REST conventions shared by the parts of the ``gcp_compute`` emulator.

Written from the public API reference and recorded answers (c7n-gcp-flights): ``selfLink`` URLs under
``https://www.googleapis.com/compute/v1``, timestamps in RFC 3339 with the US Pacific offset the real API
writes, ``maxResults`` capped at 500 with opaque ``pageToken`` strings, and Google's JSON error shape
``{"error": {"code", "message", "errors": [{"reason", "domain", "message"}], "status"}}`` (an ``ApiError``
raised inside a route is answered in it).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any

BASE = "https://www.googleapis.com/compute/v1"  # what selfLinks say on the real API
MAX_RESULTS = 500  # the real API's cap
_PACIFIC = timezone(timedelta(hours=-7))  # the real API writes timestamps in US Pacific time
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_REASON = {400: "invalid", 401: "authError", 403: "forbidden", 404: "notFound", 409: "alreadyExists",
           429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}


def timestamp(value: datetime) -> str:
    """``value`` as the API writes it: RFC 3339, milliseconds, US Pacific offset."""
    return value.astimezone(_PACIFIC).isoformat(timespec="milliseconds")


def region_of(zone: str) -> str:
    """The region of a zone (``us-central1-a`` -> ``us-central1``)."""
    return zone.rsplit("-", 1)[0]


def last_part(url: str) -> str:
    """The last path segment of a URL or partial URL (a resource's name)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def page_token(offset: int) -> str:
    """The opaque ``nextPageToken`` for a page starting at ``offset``."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def token_offset(token: str | None) -> int:
    """The offset a ``pageToken`` stands for (0 without one); ``ValueError`` for a token not ours."""
    if not token:
        return 0
    text = base64.urlsafe_b64decode(token.encode()).decode()
    if not text.startswith("offset:"):
        raise ValueError(token)
    return int(text.removeprefix("offset:"))


class ApiError(Exception):
    """An answer in the API's error shape (raised inside a route)."""

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


def error_body(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """Google's JSON error shape (Compute Engine and Resource Manager alike)."""
    reason = reason or _REASON.get(status, "unknown")
    domain = "usageLimits" if status == 429 else "global"
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN"),
                      "errors": [{"message": message, "domain": domain, "reason": reason}]}}
