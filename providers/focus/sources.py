"""From the paths a user gives to the local files to read: files, folders, globs, ``s3://``, ``gs://`` and Azure Blob URLs.

- a file is read whatever its name; a folder is walked recursively and a glob (``exports/**/*.parquet``)
  expanded, both keeping only billing data files (``.csv``, ``.csv.gz``, ``.gz``, ``.parquet``, ``.pq``:
  manifests and other files an export folder holds are left alone);
- ``s3://bucket/prefix`` (or a glob in the key) is listed and each object streamed to a temporary folder
  through ``providers.aws.storage`` (only ``providers/aws`` talks to AWS); ``gs://bucket/prefix`` likewise
  through ``providers.gcp.storage``; an Azure Blob URL (``https://<account>.blob.core.windows.net/<container>/<prefix>``,
  ``abfss://<container>@<account>.dfs.core.windows.net/<path>``, a path-style ``https://host:port/<account>/...``)
  likewise through ``providers.azure.storage``.

A path that cannot be turned into files becomes a ``BillingError`` naming it; the reader decides whether
that stops the run (``strict``) or skips the path.
"""

from __future__ import annotations

import glob
import importlib
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


def expand(raw: str, *, aws_clients: Any = None, gcp_clients: Any = None, azure_clients: Any = None,
           download_to: Path | None = None) -> Iterator[Source]:
    """The files one user path stands for; raises ``BillingError`` when it stands for none."""
    if raw.startswith(("s3://", "gs://")) or _is_azure_url(raw):
        if download_to is None:
            raise ValueError("s3://, gs:// and Azure Blob paths need a download folder")
        if raw.startswith("s3://"):
            yield from _remote(raw, "s3", aws_clients, download_to)
        elif raw.startswith("gs://"):
            yield from _remote(raw, "gcs", gcp_clients, download_to)
        else:
            yield from _remote(raw, "azure", azure_clients, download_to)
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


def _is_azure_url(raw: str) -> bool:
    """``https://``, ``abfss://``, ``abfs://``, ``wasbs://`` (and plain ``http://``/``wasb://``, refused there with a
    reason) are Azure Blob Storage: the only web storage read over a plain URL."""
    return raw.lower().startswith(("https://", "http://", "abfss://", "abfs://", "wasbs://", "wasb://"))


#: Where each object store's reader lives: (cloud package, clients class, how the user names it).
_STORES = {"s3": ("aws", "AwsClients", "s3://"), "gcs": ("gcp", "GcpClients", "gs://"),
           "azure": ("azure", "AzureClients", "Azure Blob")}


def _remote(url: str, store: str, clients: Any, folder: Path) -> Iterator[Source]:
    """Every object a store URL names, downloaded through ``providers.<cloud>.storage`` with the run's clients
    (their credential chain, endpoint and retries) or, when none are given, a default set."""
    cloud, clients_class, what = _STORES[store]
    shown = url.split("?", 1)[0]  # never a SAS token in a message
    try:
        storage = importlib.import_module(f"providers.{cloud}.storage")
        client_module = importlib.import_module(f"providers.{cloud}.client")
    except ImportError as exc:  # the cloud's SDK is an optional extra
        raise BillingError(shown, f"cannot read {what} paths: {exc}", hint=f"pip install 'costagent[{cloud}]'") from exc
    clients = clients if clients is not None else getattr(client_module, clients_class)()
    try:
        objects = storage.list_objects(clients, url, DATA_SUFFIXES)
    except ProviderError as exc:
        raise BillingError(shown, str(exc), hint=exc.hint) from exc
    for obj in objects:
        try:
            local = storage.download_object(clients, obj, folder)
        except ProviderError as exc:
            raise BillingError(obj.url, str(exc), hint=exc.hint) from exc
        yield Source(obj.url, local)
