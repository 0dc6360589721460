"""From the paths a user gives to the local files to read: files, folders, globs, ``s3://`` and ``gs://`` URLs.

- a file is read whatever its name; a folder is walked recursively and a glob (``exports/**/*.parquet``)
  expanded, both keeping only billing data files (``.csv``, ``.csv.gz``, ``.gz``, ``.parquet``, ``.pq``:
  manifests and other files an export folder holds are left alone);
- ``s3://bucket/prefix`` (or a glob in the key) is listed and each object streamed to a temporary folder
  through ``providers.aws.storage`` (only ``providers/aws`` talks to AWS); ``gs://bucket/prefix`` likewise
  through ``providers.gcp.storage``.

A path that cannot be turned into files becomes a ``BillingError`` naming it; the reader decides whether
that stops the run (``strict``) or skips the path.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from providers.errors import ProviderError
from providers.focus.errors import BillingError

DATA_SUFFIXES = (".csv", ".csv.gz", ".gz", ".parquet", ".pq")


@dataclass(frozen=True, slots=True)
class Source:
    display: str  # what the user sees in reports and errors: the local path or the s3:// URL
    path: Path  # the local file read


def is_data_file(name: str) -> bool:
    return name.lower().endswith(DATA_SUFFIXES)


def expand(raw: str, *, aws_clients: Any = None, gcp_clients: Any = None,
           download_to: Path | None = None) -> Iterator[Source]:
    """The files one user path stands for; raises ``BillingError`` when it stands for none."""
    if raw.startswith(("s3://", "gs://")):
        if download_to is None:
            raise ValueError("s3:// and gs:// paths need a download folder")
        yield from (_s3(raw, aws_clients, download_to) if raw.startswith("s3://")
                    else _gcs(raw, gcp_clients, download_to))
        return
    if any(ch in raw for ch in "*?["):
        matches = sorted(p for p in glob.glob(raw, recursive=True) if os.path.isfile(p) and is_data_file(p))
        if not matches:
            raise BillingError(raw, "no billing files match this pattern")
        yield from (Source(m, Path(m)) for m in matches)
        return
    path = Path(raw)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and is_data_file(p.name))
        if not found:
            raise BillingError(raw, f"no billing files ({', '.join(DATA_SUFFIXES)}) in this folder")
        yield from (Source(str(p), p) for p in found)
        return
    if not path.is_file():
        raise BillingError(raw, "no such file or folder")
    yield Source(raw, path)


def _s3(url: str, aws_clients: Any, folder: Path) -> Iterator[Source]:
    try:
        from providers.aws import storage
        from providers.aws.client import AwsClients
    except ImportError as exc:  # boto3 is the optional "aws" extra
        raise BillingError(url, f"cannot read s3:// paths: {exc}", hint="pip install 'costagent[aws]'") from exc
    clients = aws_clients if aws_clients is not None else AwsClients()
    try:
        objects = storage.list_objects(clients, url, DATA_SUFFIXES)
    except ProviderError as exc:
        raise BillingError(url, str(exc), hint=exc.hint) from exc
    for obj in objects:
        try:
            local = storage.download(clients, obj, folder)
        except ProviderError as exc:
            raise BillingError(obj.url, str(exc), hint=exc.hint) from exc
        yield Source(obj.url, local)


def _gcs(url: str, gcp_clients: Any, folder: Path) -> Iterator[Source]:
    try:
        from providers.gcp import storage
        from providers.gcp.client import GcpClients
    except ImportError as exc:  # google-cloud-storage is the optional "gcp" extra
        raise BillingError(url, f"cannot read gs:// paths: {exc}", hint="pip install 'costagent[gcp]'") from exc
    clients = gcp_clients if gcp_clients is not None else GcpClients()
    try:
        objects = storage.list_objects(clients, url, DATA_SUFFIXES)
    except ProviderError as exc:
        raise BillingError(url, str(exc), hint=exc.hint) from exc
    for obj in objects:
        try:
            local = storage.download_object(clients, obj, folder)
        except ProviderError as exc:
            raise BillingError(obj.url, str(exc), hint=exc.hint) from exc
        yield Source(obj.url, local)
