"""Azure Blob Storage objects for billing ingestion: list a container prefix or glob, stream blobs into a folder.

The Azure counterpart of ``providers/aws/storage.py`` (``s3://``) and ``providers/gcp/storage.py`` (``gs://``):
Cost Management exports (FOCUS, actual or amortized cost details; CSV, gzip CSV or Parquet, possibly split
in ``part_*`` files under a date folder) land in a storage account container, and the billing reader works
on local files, so each blob is listed and downloaded to a folder in 4 MiB ranges (never whole in memory),
its bytes kept as stored (``decompress=False``: the reader tells gzip by its magic bytes).

URL forms (``parse_url``) and the account URL each one gives:

- ``https://<account>.blob.<suffix>/<container>/<prefix-or-glob>``: the blob endpoint as the portal shows it,
  public (``core.windows.net``) or sovereign (``core.usgovcloudapi.net``, ``core.chinacloudapi.cn``); the
  account URL is ``https://<account>.blob.<suffix>``. ``https://<account>.dfs.<suffix>/...`` (Data Lake) is
  read through the same account's blob endpoint.
- ``abfss://<container>@<account>.dfs.<suffix>/<path>`` (and ``abfs://``, ``wasbs://...@<account>.blob...``),
  the Hadoop/Spark spellings: the account URL is ``https://<account>.blob.<suffix>``.
- ``https://<host>[:port]/<account>/<container>/<prefix>`` for any other host (an IP address, ``localhost``, a
  private DNS name: Azurite's and this project's emulator's path style): the first path segment is the
  account, the account URL ``https://<host>[:port]/<account>``.

A glob in the path (``.../exports/*/part_*.csv.gz``) is listed from the part before the first wildcard and
matched with ``fnmatch`` (``*`` also crosses ``/``); a prefix keeps the blobs whose names end with one of the
given suffixes. Plain ``http://`` is refused (bearer tokens only travel over HTTPS), and so is a query string
(a SAS token would be copied into reports and logs): access is the run's ``DefaultAzureCredential`` (through
``AzureClients.blob_service``), which needs the **Storage Blob Data Reader** role on the account or container
(the Reader role on the subscription does not read blob data). Each request is counted
(``storage.Blobs.List`` per page, ``storage.Blobs.Get`` per download) and SDK errors arrive as
``providers.errors`` naming the place, with a hint that tells the missing role from a firewall refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from providers.azure.client import AzureClients, translated
from providers.errors import AuthError, ConfigurationError, NotFound, ProviderError
from providers.object_paths import listing_prefix, local_path, wanted

log = logging.getLogger(__name__)

SCHEMES = ("https://", "abfss://", "abfs://", "wasbs://")
ROLE_HINT = ("grant the credential the Storage Blob Data Reader role on the storage account or container "
             "(Reader on the subscription does not read blob data); role assignments take a few minutes to apply")
FIREWALL_HINT = ("the storage account's firewall refused this network: add it to the account's networking rules, "
                 "or run from an allowed network or private endpoint")
CREDENTIAL_HINT = ("check DefaultAzureCredential's chain (AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, managed "
                   "identity, `az login`) and the Storage Blob Data Reader role on the account")
NOT_FOUND_HINT = "check the storage account, the container and the path (container names are lower case)"
FORM_HINT = "write https://<account>.blob.core.windows.net/<container>/<prefix> or abfss://<container>@<account>.dfs.core.windows.net/<path>"


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """Where a URL points: the account URL the SDK takes, the container, the path (a prefix or a glob) and
    ``base``, the URL text before a blob's name (so a blob is shown in the user's own spelling)."""

    account_url: str
    container: str
    path: str
    base: str

    @property
    def where(self) -> str:
        return self.account_url.split("://", 1)[-1]


@dataclass(frozen=True, slots=True)
class BlobObject:
    account_url: str
    container: str
    name: str
    size: int
    base: str  # the URL before the name, e.g. "https://acct.blob.core.windows.net/exports/"

    @property
    def url(self) -> str:
        return self.base + self.name

    @property
    def account(self) -> str:
        """The account name as far as the URL tells it (the host's first label, else the path-style segment)."""
        host, _, path = self.account_url.split("://", 1)[-1].partition("/")
        return path or host.split(".", 1)[0]


def parse_url(url: str) -> BlobLocation:
    """An Azure Blob URL -> ``BlobLocation`` (see the module docstring for the forms)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "wasb"):
        raise ConfigurationError(f"azure storage: {url}: plain HTTP is refused (tokens travel only over HTTPS)",
                                 hint="use the https:// (or wasbs://, abfss://) form of the URL")
    if scheme not in ("https", "abfss", "abfs", "wasbs"):
        raise ConfigurationError(f"not an Azure Blob URL: {url}", hint=FORM_HINT)
    if parts.query or parts.fragment:
        raise ConfigurationError(f"azure storage: {_clip(url)}: a query string (SAS token) is not accepted",
                                 hint="drop the ?sv=...&sig=... part; access goes through the run's Azure credential "
                                      "with the Storage Blob Data Reader role")
    host = parts.hostname or ""
    if not host:
        raise ConfigurationError(f"azure storage: no host in {url}", hint=FORM_HINT)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if scheme != "https":  # abfss://container@account.dfs.core.windows.net/path
        container = parts.username or ""
        labels = netloc.split(".")
        if not container or len(labels) < 3 or labels[1] not in ("dfs", "blob"):
            raise ConfigurationError(f"azure storage: cannot read {url}",
                                     hint=f"write {scheme}://<container>@<account>.dfs.core.windows.net/<path>")
        account_url = "https://" + ".".join([labels[0], "blob", *labels[2:]])
        return BlobLocation(account_url, container, parts.path.lstrip("/"), f"{scheme}://{container}@{netloc}/")
    labels = netloc.split(".")
    segments = parts.path.lstrip("/")
    if len(labels) >= 3 and labels[1] in ("blob", "dfs") and not host.replace(".", "").isdigit():
        container, _, path = segments.partition("/")
        account_url = "https://" + ".".join([labels[0], "blob", *labels[2:]])
        base = f"https://{netloc}/{container}/"
    else:  # path style: https://host:port/<account>/<container>/<path>
        account, _, rest = segments.partition("/")
        container, _, path = rest.partition("/")
        if not account:
            raise ConfigurationError(f"azure storage: no account in {url}",
                                     hint="a path-style URL is https://<host>[:port]/<account>/<container>/<prefix>")
        account_url = f"https://{netloc}/{account}"
        base = f"{account_url}/{container}/"
    if not container:
        raise ConfigurationError(f"azure storage: no container in {url}", hint=FORM_HINT)
    return BlobLocation(account_url, container, path, base)


def list_objects(clients: AzureClients, url: str, suffixes: tuple[str, ...] = ()) -> list[BlobObject]:
    """The blobs under a URL, sorted by name.

    The URL names one blob, a prefix (every blob below it whose name ends with one of ``suffixes``, when
    given) or a glob. Data Lake (hierarchical namespace) directory entries, which a flat listing returns as
    empty blobs with the ``hdi_isfolder`` metadata, and console "folders" (names ending in ``/``) are left out.
    """
    where = parse_url(url)
    prefix = listing_prefix(where.path)
    found: list[BlobObject] = []
    with _storage_errors("storage.Blobs.List", where.where):
        container = clients.blob_service(where.account_url).get_container_client(where.container)
        pages = container.list_blobs(name_starts_with=prefix or None, include=["metadata"]).by_page()
        for page in pages:
            clients.count("storage.Blobs.List")
            for blob in page:
                name = str(blob.name)
                if str((blob.metadata or {}).get("hdi_isfolder", "")).lower() == "true":
                    continue  # a Data Lake directory entry
                if wanted(name, where.path, suffixes):
                    found.append(BlobObject(where.account_url, where.container, name, int(blob.size or 0), where.base))
    if not found:
        raise NotFound(f"azure storage: nothing found at {url}", hint=NOT_FOUND_HINT)
    return sorted(found, key=lambda o: o.name)


def download_object(clients: AzureClients, obj: BlobObject, folder: Path) -> Path:
    """Stream one blob to ``folder/<account>/<container>/<name>`` (its name kept: the extension tells Parquet)."""
    target = local_path(folder, obj.account, obj.container, obj.name)
    try:
        with _storage_errors("storage.Blobs.Get", obj.account_url.split("://", 1)[-1]), open(target, "wb") as out:
            clients.count("storage.Blobs.Get")
            blob = clients.blob_service(obj.account_url).get_blob_client(obj.container, obj.name)
            blob.download_blob(max_concurrency=1, decompress=False).readinto(out)
    except BaseException:
        target.unlink(missing_ok=True)  # no half-written file for the reader to trip on
        raise
    log.debug("azure blob download url=%s bytes=%d", obj.url, target.stat().st_size)
    return target


def download(clients: AzureClients, url: str, dest_dir: Path, *, suffixes: tuple[str, ...] = ()) -> list[Path]:
    """Every blob a URL names (see ``list_objects``), downloaded under ``dest_dir``; their paths."""
    return [download_object(clients, o, Path(dest_dir)) for o in list_objects(clients, url, suffixes)]


@contextmanager
def _storage_errors(operation: str, where: str) -> Iterator[None]:
    """``translated``, then the storage service's own error code (``x-ms-error-code``) and a storage hint."""
    try:
        with translated(operation, where):
            yield
    except ProviderError as exc:
        code = _storage_code(exc.__cause__) or exc.code
        message = str(exc)
        if code and code not in message:
            message = f"{message} ({code})"
        raise type(exc)(message, hint=_hint(exc, code), code=code, status=exc.status) from exc.__cause__


def _storage_code(cause: BaseException | None) -> str | None:
    code = getattr(cause, "error_code", None)
    return str(getattr(code, "value", code)) if code else None


def _hint(exc: ProviderError, code: str | None) -> str | None:
    if isinstance(exc, AuthError):
        if code == "AuthorizationFailure":
            return FIREWALL_HINT
        if code in ("AuthorizationPermissionMismatch", "InsufficientAccountPermissions") or exc.status == 403:
            return ROLE_HINT
        return CREDENTIAL_HINT
    if isinstance(exc, NotFound):
        return NOT_FOUND_HINT
    return exc.hint


def _clip(url: str) -> str:
    return url.split("?", 1)[0] + "?..." if "?" in url else url
