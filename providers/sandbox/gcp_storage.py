"""A local emulator of the Cloud Storage JSON API: list a bucket, read object metadata, download media.

Written from the public JSON API reference and what google-cloud-storage 3.x sends:

- ``GET /storage/v1/b/{bucket}/o`` (objects.list): ``prefix``, ``delimiter`` (-> ``prefixes``),
  ``startOffset``/``endOffset``, ``matchGlob`` (``*``, ``**``, ``?``, ``[...]``, ``{a,b}``),
  ``maxResults``/``pageToken`` -> ``nextPageToken``; names in lexicographic order; ``items`` left out
  when empty. The page size is small (``page_size``) so clients page.
- ``GET /storage/v1/b/{bucket}/o/{object}`` (objects.get; with ``alt=media`` the bytes) and
  ``GET /download/storage/v1/b/{bucket}/o/{object}?alt=media`` (what ``Blob.download_to_file`` calls),
  with ``generation``, ``Range: bytes=a-b`` (206), and ``x-goog-hash: crc32c=...,md5=...``,
  ``x-goog-generation`` and ``x-goog-stored-content-length`` headers so the client validates checksums.
- ``GET /storage/v1/b/{bucket}`` (buckets.get): google-cloud-storage fetches it from a background
  thread to tag telemetry, so injected failures (``fail_next``) never apply to it, only to the object
  routes, which keeps failure tests deterministic.

Errors are ``{"error": {"code", "message", "errors": [{"reason", "domain", "message"}]}}``: 404
``notFound`` (no bucket, no object), 403 ``forbidden`` (``deny``), 400 ``invalid``.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote

from providers.sandbox.json_server import JsonApiServer, Request, Response

DEFAULT_PAGE_SIZE = 3  # the real default is 1000; small here so clients page
_REASON = {400: "invalid", 401: "required", 403: "forbidden", 404: "notFound", 429: "rateLimitExceeded",
           500: "backendError", 503: "backendError"}


@dataclass(frozen=True)
class _Object:
    bucket: str
    name: str
    data: bytes
    generation: int
    content_type: str
    created: datetime

    def resource(self, base: str) -> dict[str, Any]:
        stamp = self.created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.created.microsecond // 1000:03d}Z"
        quoted = _quote(self.name)
        return {
            "kind": "storage#object", "id": f"{self.bucket}/{self.name}/{self.generation}",
            "selfLink": f"{base}/storage/v1/b/{self.bucket}/o/{quoted}",
            "mediaLink": f"{base}/download/storage/v1/b/{self.bucket}/o/{quoted}?generation={self.generation}&alt=media",
            "name": self.name, "bucket": self.bucket, "generation": str(self.generation), "metageneration": "1",
            "contentType": self.content_type, "storageClass": "STANDARD", "size": str(len(self.data)),
            "md5Hash": _md5(self.data), "crc32c": _crc32c(self.data), "etag": f"CN{self.generation}EAE=",
            "timeCreated": stamp, "updated": stamp, "timeStorageClassUpdated": stamp,
        }


class GcsEmulator(JsonApiServer):
    """Cloud Storage buckets in memory; ``url`` is what a ``storage.Client`` takes as ``api_endpoint``."""

    name = "gcs-emulator"
    content_type = "application/json; charset=UTF-8"

    def __init__(self, *, page_size: int = DEFAULT_PAGE_SIZE, project_number: str = "123456789012") -> None:
        super().__init__()
        self.page_size = page_size
        self.project_number = project_number
        self._objects: dict[str, dict[str, _Object]] = {}
        self._denied: set[str] = set()
        self._object_failures: list[tuple[int, str]] = []
        self._generation = 1_700_000_000_000_000
        self._state = threading.RLock()

    # -- seeding ---------------------------------------------------------------------------------
    def add_bucket(self, bucket: str) -> None:
        """Create an empty bucket (``add_object`` creates its bucket too)."""
        with self._state:
            self._objects.setdefault(bucket, {})

    def add_object(self, bucket: str, name: str, data: bytes, *, content_type: str = "application/octet-stream",
                   created: datetime | None = None) -> None:
        """Store ``data`` as ``gs://bucket/name`` (a new generation when it exists)."""
        with self._state:
            self._generation += 1
            self._objects.setdefault(bucket, {})[name] = _Object(
                bucket, name, bytes(data), self._generation, content_type,
                (created or datetime.now(timezone.utc)).astimezone(timezone.utc))

    def deny(self, bucket: str) -> None:
        """Answer 403 to every object request on ``bucket``."""
        with self._state:
            self._denied.add(bucket)

    def fail_next(self, status: int, count: int = 1, message: str = "injected failure") -> None:
        """Answer the next ``count`` object requests (list, get, download) with HTTP ``status``."""
        with self._state:
            self._object_failures.extend([(status, message)] * count)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return _error(status, message)

    # -- API ---------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.method != "GET":
            return Response(405, _error(405, f"Method {request.method} not emulated on {request.path}"))
        media = request.path.startswith("/download/storage/v1/b/")
        path = request.path[len("/download"):] if media else request.path
        if not media and (b := re.fullmatch(r"/storage/v1/b/([^/]+)/?", path)):
            return self._bucket(unquote(b.group(1)), request)
        m = re.fullmatch(r"/storage/v1/b/([^/]+)/o(?:/(.+))?/?", path)
        if m is None or (media and m.group(2) is None):
            return Response(404, _error(404, f"Not Found: {request.path}"))
        bucket, name = unquote(m.group(1)), m.group(2)
        with self._state:
            failure = self._object_failures.pop(0) if self._object_failures else None
            objects = self._objects.get(bucket)
            denied = bucket in self._denied
        if failure is not None:
            return Response(failure[0], _error(*failure), {"Retry-After": "0"} if failure[0] == 429 else {})
        if denied:
            verb = "list" if name is None else "get"
            return Response(403, _error(403, f"anonymous caller does not have storage.objects.{verb} access to the "
                                             f"Google Cloud Storage bucket. Permission 'storage.objects.{verb}' denied "
                                             f"on resource (or it may not exist)."))
        if objects is None:
            return Response(404, _error(404, "The specified bucket does not exist."))
        if name is None:
            return self._list(sorted(objects.values(), key=lambda o: o.name), request)
        obj = objects.get(unquote(name))
        wanted = request.arg("generation")
        if obj is None or (wanted and wanted != str(obj.generation)):
            return Response(404, _error(404, f"No such object: {bucket}/{unquote(name)}"))
        if media or request.arg("alt") == "media":
            return _media(obj, request.headers.get("range"))
        return Response(200, obj.resource(request.base_url))

    def _bucket(self, bucket: str, request: Request) -> Response:
        with self._state:
            known = bucket in self._objects
        if not known:
            return Response(404, _error(404, "The specified bucket does not exist."))
        return Response(200, {"kind": "storage#bucket", "id": bucket, "name": bucket,
                              "selfLink": f"{request.base_url}/storage/v1/b/{bucket}",
                              "projectNumber": self.project_number, "metageneration": "1", "location": "US",
                              "locationType": "multi-region", "storageClass": "STANDARD", "etag": "CAE=",
                              "timeCreated": "2026-01-01T00:00:00.000Z", "updated": "2026-01-01T00:00:00.000Z"})

    def _list(self, objects: list[_Object], request: Request) -> Response:
        prefix = request.arg("prefix") or ""
        delimiter = request.arg("delimiter")
        start, end = request.arg("startOffset"), request.arg("endOffset")
        glob = request.arg("matchGlob")
        try:
            size = min(int(request.arg("maxResults") or self.page_size), self.page_size)
            offset = int(base64.urlsafe_b64decode(request.arg("pageToken", "") or "MA==").decode())
            pattern = _glob(glob) if glob else None
        except ValueError:
            return Response(400, _error(400, "Invalid argument."))
        entries: list[tuple[str, _Object | None]] = []
        seen: set[str] = set()
        for obj in objects:
            if not obj.name.startswith(prefix) or (start and obj.name < start) or (end and obj.name >= end):
                continue
            if pattern is not None and not pattern.fullmatch(obj.name):
                continue
            rest = obj.name[len(prefix):]
            if delimiter and delimiter in rest:
                folder = prefix + rest.split(delimiter, 1)[0] + delimiter
                if folder not in seen:
                    seen.add(folder)
                    entries.append((folder, None))
                continue
            entries.append((obj.name, obj))
        page = entries[offset:offset + max(size, 1)]
        body: dict[str, Any] = {"kind": "storage#objects"}
        items = [o.resource(request.base_url) for _, o in page if o is not None]
        prefixes = [n for n, o in page if o is None]
        if items:
            body["items"] = items
        if prefixes:
            body["prefixes"] = prefixes
        if offset + len(page) < len(entries):
            body["nextPageToken"] = base64.urlsafe_b64encode(str(offset + len(page)).encode()).decode()
        return Response(200, body)


def _media(obj: _Object, byte_range: str | None) -> Response:
    headers = {"Content-Type": obj.content_type, "x-goog-hash": f"crc32c={_crc32c(obj.data)},md5={_md5(obj.data)}",
               "x-goog-generation": str(obj.generation), "x-goog-metageneration": "1",
               "x-goog-stored-content-length": str(len(obj.data)), "x-goog-stored-content-encoding": "identity",
               "ETag": f'"{hashlib.md5(obj.data).hexdigest()}"'}  # GCS's ETag of a simple upload is its MD5
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", (byte_range or "").strip())
    if m is None:
        return Response(200, obj.data, headers)
    first = int(m.group(1))
    last = min(int(m.group(2)) if m.group(2) else len(obj.data) - 1, len(obj.data) - 1)
    if first >= len(obj.data):
        return Response(416, _error(416, "The requested range cannot be satisfied."))
    headers["Content-Range"] = f"bytes {first}-{last}/{len(obj.data)}"
    return Response(206, obj.data[first:last + 1], headers)


def _glob(pattern: str) -> re.Pattern[str]:
    """GCS ``matchGlob``: ``**`` crosses ``/``, ``*`` and ``?`` do not, ``[...]`` and ``{a,b}`` as in shells."""
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif ch == "*":
            out, i = out + "[^/]*", i + 1
        elif ch == "?":
            out, i = out + "[^/]", i + 1
        elif ch == "{":
            close = pattern.index("}", i)
            out, i = out + "(?:" + "|".join(map(re.escape, pattern[i + 1:close].split(","))) + ")", close + 1
        elif ch == "[":
            close = pattern.index("]", i)
            out, i = out + fnmatch.translate(pattern[i:close + 1])[4:-3], close + 1
        else:
            out, i = out + re.escape(ch), i + 1
    return re.compile(out, re.S)


def _quote(name: str) -> str:
    return quote(name, safe="")


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # the API's own checksum, not security


def _crc32c(data: bytes) -> str:
    """Base64 of the big-endian CRC32C, as GCS publishes it."""
    try:
        import google_crc32c  # installed with google-cloud-storage; fast

        value = google_crc32c.value(data)
    except ImportError:
        value = 0xFFFFFFFF
        for byte in data:
            value = _CRC_TABLE[(value ^ byte) & 0xFF] ^ (value >> 8)
        value ^= 0xFFFFFFFF
    return base64.b64encode(value.to_bytes(4, "big")).decode()


def _crc_entry(n: int) -> int:
    for _ in range(8):
        n = (n >> 1) ^ 0x82F63B78 if n & 1 else n >> 1
    return n


_CRC_TABLE = [_crc_entry(i) for i in range(256)]


def _error(status: int, message: str) -> dict[str, Any]:
    reason = _REASON.get(status, "invalid")
    return {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": "global", "reason": reason}]}}
