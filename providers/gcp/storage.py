"""Cloud Storage objects for billing ingestion: list a ``gs://`` prefix or glob, stream objects into a folder.

The GCS counterpart of ``providers/aws/storage.py``: billing exports (FOCUS or other CSV/Parquet files,
e.g. a BigQuery export table extracted to GCS) are read from local files, so each object is downloaded
to a folder, streamed to disk by google-cloud-storage (never held whole in memory), checksums checked
by the library (``x-goog-hash``). ``raw_download`` keeps a gzip-encoded object's bytes as stored, so a
``.csv.gz`` stays gzip whatever its ``Content-Encoding`` (no decompressive transcoding).

The SDK client comes from ``GcpClients.storage()`` where the build has it, else from the caller
(``storage_client=``): within a cloud only ``client.py`` imports the SDK. Retries are the run's
(``clients.retry``), each request is counted (``storage.Objects.List`` per page, ``storage.Objects.Get``
per download), SDK errors arrive as ``providers.errors`` naming the place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from providers.errors import ConfigurationError, NotFound
from providers.gcp.client import GcpClients, translated
from providers.object_paths import listing_prefix, local_path, wanted

log = logging.getLogger(__name__)

PUBLIC_HOST = "storage.googleapis.com"
RETRYABLE = (408, 429, 500, 502, 503, 504)  # what Cloud Storage documents as retryable
_DROPPED = (ConnectionError, requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.Timeout)


def _transient(exc: BaseException) -> bool:
    """Retry on the statuses GCS calls retryable and on dropped connections. The media download raises
    its own ``InvalidResponse`` (with ``.response``), which the api_core transient predicate ignores."""
    status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "code", None)
    return status in RETRYABLE or isinstance(exc, _DROPPED)


@dataclass(frozen=True, slots=True)
class GcsObject:
    bucket: str
    name: str
    size: int

    @property
    def url(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def parse_url(url: str) -> tuple[str, str]:
    """``gs://bucket/some/prefix`` -> (``bucket``, ``some/prefix``)."""
    if not url.startswith("gs://"):
        raise ConfigurationError(f"not a gs:// URL: {url}")
    bucket, _, name = url[len("gs://"):].partition("/")
    if not bucket:
        raise ConfigurationError(f"no bucket in {url}", hint="write gs://bucket/prefix")
    return bucket, name


def sdk_client(clients: GcpClients, given: Any = None) -> Any:
    """The ``google.cloud.storage.Client`` to use: the one given, else ``clients.storage()``."""
    return given if given is not None else clients.storage()


def _retry(clients: GcpClients) -> Any:
    return clients.retry.with_predicate(_transient)


def _where(client: Any) -> str:
    return str(getattr(client, "api_endpoint", None) or PUBLIC_HOST)


def list_objects(clients: GcpClients, url: str, suffixes: tuple[str, ...] = (), *,
                 storage_client: Any = None) -> list[GcsObject]:
    """The objects under a URL, sorted by name.

    The URL names one object, a prefix (every object below it whose name ends with one of
    ``suffixes``, when given) or a glob (``gs://b/focus/*/part-*.parquet``: listed from the part
    before the first wildcard, matched with ``fnmatch``, where ``*`` also crosses ``/``).
    """
    bucket, key = parse_url(url)
    prefix = listing_prefix(key)
    client = sdk_client(clients, storage_client)
    found: list[GcsObject] = []
    with translated("storage.Objects.List", _where(client)):
        pager = client.list_blobs(bucket, prefix=prefix or None, retry=_retry(clients), timeout=clients.timeout)
        for page in pager.pages:
            clients.count("storage.Objects.List")
            for blob in page:
                name = str(blob.name)
                if wanted(name, key, suffixes):
                    found.append(GcsObject(bucket, name, int(blob.size or 0)))
    if not found:
        raise NotFound(f"gcp storage: nothing found at {url}", hint="check the bucket and the prefix")
    return sorted(found, key=lambda o: o.name)


def download_object(clients: GcpClients, obj: GcsObject, folder: Path, *, storage_client: Any = None) -> Path:
    """Stream one object to ``folder/<bucket>/<name>`` (its name kept: the extension tells gzip)."""
    target = local_path(folder, obj.bucket, obj.name)
    client = sdk_client(clients, storage_client)
    blob = client.bucket(obj.bucket).blob(obj.name)
    try:
        with translated("storage.Objects.Get", _where(client)), open(target, "wb") as out:
            clients.count("storage.Objects.Get")
            blob.download_to_file(out, raw_download=True, retry=_retry(clients), timeout=clients.timeout)
    except BaseException:
        target.unlink(missing_ok=True)  # no half-written file for the reader to trip on
        raise
    log.debug("gcs download url=%s bytes=%d", obj.url, target.stat().st_size)
    return target


def download(clients: GcpClients, url: str, dest_dir: Path, *, suffixes: tuple[str, ...] = (),
             storage_client: Any = None) -> list[Path]:
    """Every object a ``gs://`` URL names (see ``list_objects``), downloaded under ``dest_dir``; their paths."""
    client = sdk_client(clients, storage_client)
    objects = list_objects(clients, url, suffixes, storage_client=client)
    return [download_object(clients, o, Path(dest_dir), storage_client=client) for o in objects]

