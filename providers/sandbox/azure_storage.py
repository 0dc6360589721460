"""A local emulator of the Azure Blob Storage REST API: list a container, read blob properties, download blobs.

Written from the public Blob service REST reference and what azure-storage-blob 12.x sends, path style as
Azurite serves it (``https://127.0.0.1:PORT/<account>/<container>/<blob>``; the SDK builds such URLs from an
account URL ``https://127.0.0.1:PORT/<account>``, ``account_url(account)`` here):

- ``GET /{account}/{container}?restype=container&comp=list`` (List Blobs): ``prefix``, ``delimiter`` (->
  ``BlobPrefix``), ``marker``/``maxresults`` -> ``NextMarker`` (empty on the last page), ``include=metadata``;
  the XML ``EnumerationResults`` document (``ServiceEndpoint``/``ContainerName`` attributes, ``Blobs/Blob``
  with ``Name`` and ``Properties``: ``Creation-Time``, ``Last-Modified``, ``Etag``, ``Content-Length``,
  ``Content-Type``, ``BlobType``...), names in lexicographic order. Pages hold at most ``page_size`` (real:
  5000) so clients page; ``maxresults`` <= 0 is 400 ``OutOfRangeQueryParameterValue``.
- ``GET|HEAD /{account}/{container}?restype=container`` (Get Container Properties).
- ``GET /{account}/{container}/{blob}`` (Get Blob) with ``x-ms-range`` or ``Range: bytes=a-b`` (206 and
  ``Content-Range``; 416 ``InvalidRange`` past the end, which is what an empty blob answers to the SDK's first
  ranged read), ``If-Match``/``If-None-Match`` (412 ``ConditionNotMet``, 304), ``x-ms-range-get-content-md5``;
  headers ``x-ms-blob-type``, ``Content-Length``, ``ETag`` (quoted), ``Last-Modified``, ``x-ms-creation-time``,
  ``x-ms-blob-content-md5``, ``x-ms-lease-state``, ``x-ms-version``, ``x-ms-request-id``, echoed
  ``x-ms-client-request-id``. ``HEAD`` is Get Blob Properties (the same headers, no body).

Requests need ``Authorization: Bearer <token>`` (else 401 ``NoAuthenticationInformation``; with
``token=`` set, another token is 401 ``InvalidAuthenticationInfo``) and ``x-ms-version`` (else 400
``MissingRequiredHeader``). Errors are the service's XML ``<Error><Code/><Message/></Error>`` with the same
code in ``x-ms-error-code``: 404 ``ContainerNotFound``/``BlobNotFound``, 403 ``AuthorizationPermissionMismatch``
(a missing data role) or ``AuthorizationFailure`` (the account firewall) through ``deny``, 405
``UnsupportedHttpVerb``. Accounts need no registration: a container is known once seeded.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape, quoteattr

from providers.sandbox.json_server import JsonApiServer, Request, Response

DEFAULT_PAGE_SIZE = 2  # the real service answers up to 5000 per page; small here so clients page
API_VERSION = "2025-11-05"  # answered when a request names none (it must; see MissingRequiredHeader)
_MESSAGES = {
    "AuthorizationPermissionMismatch": "This request is not authorized to perform this operation using this permission.",
    "AuthorizationFailure": "This request is not authorized to perform this operation.",
    "ContainerNotFound": "The specified container does not exist.",
    "BlobNotFound": "The specified blob does not exist.",
    "InvalidRange": "The range specified is invalid for the current size of the resource.",
    "ConditionNotMet": "The condition specified using HTTP conditional header(s) is not met.",
    "NoAuthenticationInformation": "Server failed to authenticate the request. Please refer to the information in "
                                   "the www-authenticate header.",
    "InvalidAuthenticationInfo": "Server failed to authenticate the request. Please refer to the information in "
                                 "the www-authenticate header.",
    "UnsupportedHttpVerb": "The resource doesn't support specified Http Verb.",
    "MissingRequiredHeader": "An HTTP header that's mandatory for this request is not specified.",
    "OutOfRangeQueryParameterValue": "One of the query parameters specified in the request URI is outside the "
                                     "permissible range.",
    "InvalidQueryParameterValue": "Value for one of the query parameters specified in the request URI is invalid.",
    "ServerBusy": "The server is busy.",
    "InternalError": "The server encountered an internal error. Please retry the request.",
}
_STATUS_CODE = {400: "InvalidQueryParameterValue", 401: "InvalidAuthenticationInfo",
                403: "AuthorizationPermissionMismatch", 404: "ContainerNotFound", 500: "InternalError",
                503: "ServerBusy"}
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class _Blob:
    name: str
    data: bytes
    etag: str  # unquoted, e.g. 0x8DC1A2B3C4D5E6F
    content_type: str
    content_encoding: str | None
    created: datetime
    modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        out = {"Content-Type": self.content_type, "Last-Modified": _http_date(self.modified),
               "ETag": f'"{self.etag}"', "Accept-Ranges": "bytes", "x-ms-creation-time": _http_date(self.created),
               "x-ms-blob-type": "BlockBlob", "x-ms-lease-status": "unlocked", "x-ms-lease-state": "available",
               "x-ms-server-encrypted": "true", "x-ms-blob-content-md5": _md5(self.data)}
        if self.content_encoding:
            out["Content-Encoding"] = self.content_encoding
        out.update({f"x-ms-meta-{k}": v for k, v in self.metadata.items()})
        return out

    def xml(self, include_metadata: bool) -> str:
        name = (f'<Name Encoded="true">{quote(self.name, safe="/")}</Name>' if _XML_UNSAFE.search(self.name)
                else f"<Name>{escape(self.name)}</Name>")
        props = (f"<Creation-Time>{_http_date(self.created)}</Creation-Time>"
                 f"<Last-Modified>{_http_date(self.modified)}</Last-Modified><Etag>{self.etag}</Etag>"
                 f"<Content-Length>{len(self.data)}</Content-Length>"
                 f"<Content-Type>{escape(self.content_type)}</Content-Type>"
                 f"<Content-Encoding>{escape(self.content_encoding or '')}</Content-Encoding>"
                 f"<Content-Language /><Content-CRC64 /><Content-MD5>{_md5(self.data)}</Content-MD5>"
                 "<Cache-Control /><Content-Disposition /><BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier>"
                 "<AccessTierInferred>true</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus>"
                 "<LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted>")
        meta = ""
        if include_metadata:
            meta = "<Metadata>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in self.metadata.items()) + "</Metadata>"
        return f"<Blob>{name}<Properties>{props}</Properties>{meta}</Blob>"


class AzureBlobEmulator(JsonApiServer):
    """Storage accounts' containers in memory over HTTPS (``ca_path`` is the CA to trust).

    ``AzureClients(credential=..., ca_bundle=emu.ca_path).blob_service(emu.account_url("acct"))`` reads it;
    a billing URL is ``emu.blob_url("acct", "exports", "focus/")``.
    """

    name = "azure-blob-emulator"
    content_type = "application/xml"

    def __init__(self, *, page_size: int = DEFAULT_PAGE_SIZE, token: str | None = None) -> None:
        super().__init__(tls=True)
        self.page_size = page_size
        self.token = token  # when set, the only bearer token accepted
        self._containers: dict[tuple[str, str], dict[str, _Blob]] = {}
        self._denied: dict[tuple[str, str], str] = {}
        self._blob_failures: list[tuple[int, str, str]] = []
        self._clock = 0x8DC0000000000000
        self._state = threading.RLock()

    # -- addresses -------------------------------------------------------------------------------
    def account_url(self, account: str) -> str:
        """What ``BlobServiceClient`` takes: ``https://127.0.0.1:PORT/<account>`` (path style)."""
        return f"{self.url}/{account}"

    def blob_url(self, account: str, container: str, path: str = "") -> str:
        """A billing path for ``costagent audit --billing``: ``https://127.0.0.1:PORT/<account>/<container>/<path>``."""
        return f"{self.url}/{account}/{container}/{path}"

    # -- seeding ---------------------------------------------------------------------------------
    def add_container(self, account: str, container: str) -> None:
        """Create an empty container (``add_blob`` creates its container too)."""
        with self._state:
            self._containers.setdefault((account, container), {})

    def add_blob(self, account: str, container: str, name: str, data: bytes, *,
                 content_type: str = "application/octet-stream", content_encoding: str | None = None,
                 metadata: dict[str, str] | None = None, modified: datetime | None = None) -> None:
        """Store ``data`` as block blob ``name`` (replacing one of that name: a new ETag). ``metadata`` as
        ``x-ms-meta-*``; ``{"hdi_isfolder": "true"}`` with empty data is a Data Lake directory entry."""
        with self._state:
            self._clock += 1
            blobs = self._containers.setdefault((account, container), {})
            now = (modified or datetime.now(UTC)).astimezone(UTC)
            created = blobs[name].created if name in blobs else now
            blobs[name] = _Blob(name, bytes(data), f"0x{self._clock:X}", content_type, content_encoding, created,
                                now, dict(metadata or {}))

    def delete_blob(self, account: str, container: str, name: str) -> None:
        """Remove a blob (the next listing leaves it out; a download of it is 404 ``BlobNotFound``)."""
        with self._state:
            self._containers.get((account, container), {}).pop(name, None)

    def deny(self, account: str, container: str, code: str = "AuthorizationPermissionMismatch") -> None:
        """Answer 403 ``code`` to every request on the container: ``AuthorizationPermissionMismatch`` is a token
        without a data role (Storage Blob Data Reader), ``AuthorizationFailure`` the account's firewall."""
        with self._state:
            self._denied[(account, container)] = code

    def fail_next(self, status: int, count: int = 1, message: str = "injected failure", code: str | None = None) -> None:
        """Answer the next ``count`` requests with HTTP ``status`` in the service's XML error shape (``code``
        defaults by status: 503 ``ServerBusy``, 500 ``InternalError``, 403 ``AuthorizationPermissionMismatch``...)."""
        with self._state:
            self._blob_failures.extend([(status, code or _STATUS_CODE.get(status, "InternalError"), message)] * count)

    def error_body(self, status: int, message: str) -> bytes:  # type: ignore[override]
        return _error_xml(_STATUS_CODE.get(status, "InternalError"), message)

    # -- API ---------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        response = self._route(request)
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        response.headers.setdefault("x-ms-version", request.headers.get("x-ms-version", API_VERSION))
        response.headers.setdefault("Date", _http_date(datetime.now(UTC)))
        if "x-ms-client-request-id" in request.headers:
            response.headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
        return response

    def _route(self, request: Request) -> Response:
        with self._state:
            failure = self._blob_failures.pop(0) if self._blob_failures else None
        if failure is not None:
            return _error(failure[0], failure[1], failure[2])
        if request.method not in ("GET", "HEAD"):
            return _error(405, "UnsupportedHttpVerb")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _error(401, "NoAuthenticationInformation")
        if self.token is not None and auth[len("Bearer "):] != self.token:
            return _error(401, "InvalidAuthenticationInfo")
        if "x-ms-version" not in request.headers:
            return _error(400, "MissingRequiredHeader")
        m = re.fullmatch(r"/([^/]+)/([^/]+)(?:/(.*))?", request.path)
        if m is None:
            return _error(400, "InvalidQueryParameterValue", f"not emulated: {request.path}")
        account, container, name = unquote(m.group(1)), unquote(m.group(2)), m.group(3)
        with self._state:
            blobs = self._containers.get((account, container))
            denied = self._denied.get((account, container))
            listing = sorted(blobs.values(), key=lambda b: b.name) if blobs is not None else []
            blob = blobs.get(unquote(name)) if blobs is not None and name else None
        if denied:
            return _error(403, denied)
        if blobs is None:
            return _error(404, "ContainerNotFound")
        if not name:
            if request.arg("restype") != "container":
                return _error(400, "InvalidQueryParameterValue", "restype=container is required on a container")
            if request.arg("comp") == "list" and request.method == "GET":
                return self._list(account, container, listing, request)
            if request.arg("comp") is None:
                return Response(200, b"", {"ETag": '"0x8DC0000000000000"', "Last-Modified": _http_date(_EPOCH),
                                           "x-ms-lease-status": "unlocked", "x-ms-lease-state": "available",
                                           "x-ms-has-immutability-policy": "false", "x-ms-has-legal-hold": "false"})
            return _error(400, "InvalidQueryParameterValue", f"comp={request.arg('comp')} not emulated")
        if request.arg("comp") is not None:
            return _error(400, "InvalidQueryParameterValue", f"comp={request.arg('comp')} not emulated on a blob")
        if blob is None:
            return _error(404, "BlobNotFound")
        return _read(blob, request)

    def _list(self, account: str, container: str, blobs: list[_Blob], request: Request) -> Response:
        prefix, delimiter = request.arg("prefix") or "", request.arg("delimiter") or ""
        marker = request.arg("marker") or ""
        try:
            wanted = int(request.arg("maxresults") or 5000)
            after = base64.urlsafe_b64decode(marker.encode()).decode() if marker else ""
        except ValueError:
            return _error(400, "InvalidQueryParameterValue", "marker or maxresults is malformed")
        if wanted <= 0:
            return _error(400, "OutOfRangeQueryParameterValue")
        include_metadata = "metadata" in (request.arg("include") or "").split(",")
        entries: list[tuple[str, _Blob | None]] = []  # (name, blob) or (virtual folder, None)
        for blob in blobs:
            if not blob.name.startswith(prefix):
                continue
            rest = blob.name[len(prefix):]
            if delimiter and delimiter in rest:
                folder = prefix + rest.split(delimiter, 1)[0] + delimiter
                if not entries or entries[-1][0] != folder:
                    entries.append((folder, None))
                continue
            entries.append((blob.name, blob))
        remaining = [e for e in entries if e[0] >= after] if after else entries
        size = min(wanted, self.page_size)
        page, rest_entries = remaining[:size], remaining[size:]
        next_marker = base64.urlsafe_b64encode(rest_entries[0][0].encode()).decode() if rest_entries else ""
        items = "".join(b.xml(include_metadata) if b is not None else f"<BlobPrefix><Name>{escape(n)}</Name></BlobPrefix>"
                        for n, b in page)
        endpoint = f"{request.base_url}/{account}/"
        body = ('<?xml version="1.0" encoding="utf-8"?>'
                f"<EnumerationResults ServiceEndpoint={quoteattr(endpoint)} ContainerName={quoteattr(container)}>"
                + (f"<Prefix>{escape(prefix)}</Prefix>" if prefix else "")
                + (f"<Marker>{escape(marker)}</Marker>" if marker else "")
                + (f"<MaxResults>{wanted}</MaxResults>" if request.arg("maxresults") else "")
                + (f"<Delimiter>{escape(delimiter)}</Delimiter>" if delimiter else "")
                + f"<Blobs>{items}</Blobs>"
                + (f"<NextMarker>{next_marker}</NextMarker>" if next_marker else "<NextMarker />")
                + "</EnumerationResults>")
        return Response(200, body.encode(), {"Content-Type": "application/xml"})


def _read(blob: _Blob, request: Request) -> Response:
    """Get Blob / Get Blob Properties with conditions and a byte range."""
    headers = blob.headers()
    if_match = request.headers.get("if-match")
    if if_match and if_match.strip() not in ("*", f'"{blob.etag}"', blob.etag):
        return _error(412, "ConditionNotMet")
    if_none = request.headers.get("if-none-match")
    if if_none and if_none.strip() in ("*", f'"{blob.etag}"', blob.etag):
        return Response(304, b"", {"ETag": headers["ETag"]})
    if request.method == "HEAD":
        headers["Content-MD5"] = _md5(blob.data)
        return Response(200, blob.data, headers)  # the server sends no body for HEAD, only its Content-Length
    byte_range = request.headers.get("x-ms-range") or request.headers.get("range")
    if not byte_range:
        headers["Content-MD5"] = _md5(blob.data)
        return Response(200, blob.data, headers)
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", byte_range.strip())
    if m is None:
        return _error(400, "InvalidQueryParameterValue", f"malformed range {byte_range!r}")
    first = int(m.group(1))
    if first >= len(blob.data):
        return _error(416, "InvalidRange")
    last = min(int(m.group(2)) if m.group(2) else len(blob.data) - 1, len(blob.data) - 1)
    chunk = blob.data[first:last + 1]
    headers["Content-Range"] = f"bytes {first}-{last}/{len(blob.data)}"
    if request.headers.get("x-ms-range-get-content-md5", "").lower() == "true":
        headers["Content-MD5"] = _md5(chunk)
    return Response(206, chunk, headers)


_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _error(status: int, code: str, message: str | None = None) -> Response:
    return Response(status, _error_xml(code, message or _MESSAGES.get(code, code)),
                    {"Content-Type": "application/xml", "x-ms-error-code": code})


def _error_xml(code: str, message: str) -> bytes:
    request_id = uuid.uuid4()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    return ('<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}\nRequestId:{request_id}\nTime:{stamp}"
            "</Message></Error>").encode()


def _http_date(when: datetime) -> str:
    return format_datetime(when.astimezone(UTC), usegmt=True)


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # the service's checksum header, not security
