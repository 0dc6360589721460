"""The only module that builds Azure management clients: credential, endpoint, retries, call counting, errors.

Configuration is Azure's standard chain: ``DefaultAzureCredential`` (environment variables
``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_CLIENT_SECRET`` or a federated token, workload or managed
identity, ``az login``), ``AZURE_AUTHORITY_HOST`` for sovereign clouds. ``base_url`` points Azure
Resource Manager elsewhere (a sovereign cloud, a proxy, a local emulator); ``ca_bundle`` is the CA
file to trust for it (azure-core also honours ``REQUESTS_CA_BUNDLE``). ``metrics_endpoint`` is Azure
Monitor's metrics data plane (``metrics:getBatch``), a template where ``{region}`` becomes the VMs'
location (default ``https://{region}.metrics.monitor.azure.com`` with the public Resource Manager, the
matching ``azure.us``/``azure.cn`` one with a US Government or China Resource Manager, none otherwise:
a proxy's or an emulator's data plane is not guessed; ``off`` turns it off).

Provider modules count each request (page) with ``count("compute.VirtualMachines.ListAll")`` and wrap
calls in ``translated(operation, where)``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import azure.core.exceptions as aexc

from providers.errors import AuthError, ConfigurationError, NotFound, ProviderError, Throttled

log = logging.getLogger(__name__)

ARM_URL = "https://management.azure.com"
AUTH_HINT = ("check DefaultAzureCredential's chain (AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, "
             "managed identity, `az login`) and the Reader role on the subscription")
ClientFactory = Callable[..., Any]
#: Azure Monitor's metrics data plane (``metrics:getBatch``) and its token audience, public cloud.
METRICS_ENDPOINT = "https://{region}.metrics.monitor.azure.com"
METRICS_AUDIENCE = "https://metrics.monitor.azure.com"
#: Methods azure-core retries for the data plane: its default set plus POST, since ``metrics:getBatch`` is a read
#: sent as a POST (azure-core retries a POST only on 500/503/504, not on the 529 the metrics back end throttles with).
METRICS_RETRY_METHODS = frozenset(["HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"])
#: The data plane of the sovereign clouds, by their Resource Manager URL.
_SOVEREIGN_METRICS = {"https://management.usgovcloudapi.net": "https://{region}.metrics.monitor.azure.us",
                      "https://management.chinacloudapi.cn": "https://{region}.metrics.monitor.azure.cn"}
_ENTRA_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn",
                "login.microsoftonline.de")


class AzureClients:
    """One run's management clients (one per (kind, subscription)), built lazily with shared settings.

    ``subscriptions``: to audit (empty: every enabled subscription the credential sees).
    ``credential``: any object with ``get_token`` (default ``DefaultAzureCredential``).
    ``polling_interval``: seconds between long-running-operation polls when the service sends no
    ``Retry-After`` (tests use 0). ``retry_total``: attempts on 408/429/5xx and dropped connections.
    ``metrics_endpoint``: the metrics data plane's URL template (module docstring); ``metrics_endpoint``
    after construction is the template in force, None when the batch metrics API is not used.
    """

    def __init__(
        self,
        *,
        subscriptions: Sequence[str] = (),
        credential: Any = None,
        base_url: str | None = None,
        ca_bundle: str | None = None,
        polling_interval: float | None = None,
        retry_total: int = 4,
        retry_backoff_factor: float = 0.8,
        timeout: float = 120.0,
        metrics_endpoint: str | None = None,
    ) -> None:
        self.configured_subscriptions = tuple(subscriptions)
        self.base_url = (base_url or ARM_URL).rstrip("/")
        self.metrics_endpoint = _metrics_template(metrics_endpoint, self.base_url)
        self.ca_bundle = ca_bundle
        self._credential = credential
        self._polling_interval = polling_interval
        self._retry_total = retry_total
        self._retry_backoff = retry_backoff_factor
        self.timeout = timeout
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()
        self.calls: Counter[str] = Counter()

    @property
    def where(self) -> str:
        return self.base_url.split("://", 1)[-1]

    def count(self, operation: str, n: int = 1) -> None:
        with self._lock:
            self.calls[operation] += n

    @property
    def credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                try:
                    from azure.identity import DefaultAzureCredential
                except ImportError as exc:  # pragma: no cover - the extra installs it
                    raise ConfigurationError("azure: azure-identity is not installed",
                                             hint="pip install 'costagent[azure]'") from exc
                kwargs: dict[str, Any] = {"exclude_interactive_browser_credential": True}
                if self.ca_bundle:
                    kwargs["connection_verify"] = self.ca_bundle  # the login endpoint may sit behind the same CA
                authority = os.environ.get("AZURE_AUTHORITY_HOST", "")
                if authority and not any(host in authority for host in _ENTRA_HOSTS):
                    # A private authority (an emulator, an air-gapped cloud): MSAL cannot look it up in Microsoft's
                    # instance metadata, so skip that discovery (azure-identity's documented switch).
                    kwargs["disable_instance_discovery"] = True
                self._credential = DefaultAzureCredential(**kwargs)
            return self._credential

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments every management client gets (endpoint, TLS trust, retries, polling)."""
        out: dict[str, Any] = {"base_url": self.base_url, "retry_total": self._retry_total,
                               "retry_backoff_factor": self._retry_backoff, "connection_timeout": 30,
                               "read_timeout": self.timeout, "user_agent": "costagent/0.1"}
        if self.base_url != ARM_URL:
            # A custom Resource Manager keeps the public cloud's token audience.
            out["credential_scopes"] = [f"{ARM_URL}/.default"]
        if self.ca_bundle:
            out["connection_verify"] = self.ca_bundle
        if self._polling_interval is not None:
            out["polling_interval"] = self._polling_interval
        return out

    def _cached(self, kind: str, key: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            if (kind, key) not in self._clients:
                self._clients[(kind, key)] = build()
            return self._clients[(kind, key)]

    def compute(self, subscription: str) -> Any:
        from azure.mgmt.compute import ComputeManagementClient

        return self._cached("compute", subscription,
                            lambda: ComputeManagementClient(self.credential, subscription, **self.kwargs()))

    def monitor(self, subscription: str) -> Any:
        from azure.mgmt.monitor import MonitorManagementClient

        return self._cached("monitor", subscription,
                            lambda: MonitorManagementClient(self.credential, subscription, **self.kwargs()))

    def costs(self) -> Any:
        from azure.mgmt.costmanagement import CostManagementClient

        return self._cached("costmanagement", "", lambda: CostManagementClient(self.credential, **self.kwargs()))

    def blob_service(self, account_url: str) -> Any:
        """A ``BlobServiceClient`` for one storage account (``https://<account>.blob.core.windows.net``, or a
        path-style ``https://host:port/<account>``): the run's credential (token scope
        ``https://storage.azure.com/.default``), TLS trust and retries (the storage SDK's own exponential policy,
        scaled by ``retry_backoff_factor``); downloads go in 4 MiB ranges, never a whole blob in memory."""
        from azure.storage.blob import BlobServiceClient

        backoff = self._retry_backoff
        options: dict[str, Any] = {"retry_total": self._retry_total, "initial_backoff": backoff * 2,
                                   "increment_base": backoff * 4, "random_jitter_range": backoff,
                                   "connection_timeout": 30, "read_timeout": self.timeout,
                                   "user_agent": "costagent/0.1", "max_single_get_size": 4 << 20,
                                   "max_chunk_get_size": 4 << 20}
        if self.ca_bundle:
            options["connection_verify"] = self.ca_bundle
        return self._cached("blob", account_url,
                            lambda: BlobServiceClient(account_url, credential=self.credential, **options))

    def metrics_batch_url(self, region: str) -> str | None:
        """The metrics data plane's endpoint for one location, None when none is configured."""
        if not self.metrics_endpoint:
            return None
        return self.metrics_endpoint.replace("{region}", region.lower())

    def metrics_batch(self, region: str) -> Any | None:
        """A ``MetricsClient`` (Azure Monitor's batch metrics API, ``metrics:getBatch``) for one location: the
        run's credential with the data plane's token audience (``https://metrics.monitor.azure.com``, or the
        sovereign cloud's), TLS trust and retries. None where no endpoint is configured or the SDK
        (``azure-monitor-querymetrics``) is not installed: the caller reads per resource instead."""
        url = self.metrics_batch_url(region)
        if url is None:
            return None
        try:
            from azure.monitor.querymetrics import MetricsClient
        except ImportError:
            try:  # azure-monitor-query 1.4.x carried the same client before 2.0 moved it out
                from azure.monitor.query import MetricsClient  # type: ignore[attr-defined,no-redef]
            except ImportError:
                log.info("event=metrics_batch_unavailable reason=%r", "azure-monitor-querymetrics is not installed")
                return None
        options: dict[str, Any] = {"audience": _metrics_audience(url), "retry_total": self._retry_total,
                                   "retry_backoff_factor": self._retry_backoff, "connection_timeout": 30,
                                   "read_timeout": self.timeout, "user_agent": "costagent/0.1"}
        if self.ca_bundle:
            options["connection_verify"] = self.ca_bundle
        return self._cached("metrics-batch", url, lambda: MetricsClient(url, self.credential, **options))

    def subscription_client(self) -> Any:
        from azure.mgmt.subscription import SubscriptionClient

        return self._cached("subscription", "", lambda: SubscriptionClient(self.credential, **self.kwargs()))

    def subscriptions(self) -> list[str]:
        """The configured subscriptions, else every Enabled one the credential can read."""
        if self.configured_subscriptions:
            return list(self.configured_subscriptions)
        found: list[str] = []
        with translated("subscription.Subscriptions.List", self.where):
            for sub in self.subscription_client().subscriptions.list():
                if str(getattr(sub, "state", "Enabled") or "Enabled").lower() == "enabled":
                    found.append(sub.subscription_id)
        self.count("subscription.Subscriptions.List")
        if not found:
            raise ConfigurationError("azure: no subscription to audit (none configured, none visible)",
                                     hint="set azure.subscriptions in the config file, or grant Reader on one")
        return sorted(set(found))


def _metrics_template(configured: str | None, base_url: str) -> str | None:
    """The data plane template in force: the configured one (``off``/``none``: none), else the one that goes
    with the Resource Manager (public or sovereign), else none."""
    if configured is not None:
        text = configured.strip().rstrip("/")
        return None if text.lower() in ("", "off", "none") else text
    if base_url == ARM_URL:
        return METRICS_ENDPOINT
    return _SOVEREIGN_METRICS.get(base_url)


def _metrics_audience(url: str) -> str:
    """``https://metrics.monitor.<cloud suffix>`` for a regional ``<region>.metrics.monitor.<suffix>`` host,
    else the public cloud's audience (a proxy, an emulator)."""
    host = urlsplit(url).hostname or ""
    match = re.fullmatch(r"[^.]+\.(metrics\.monitor\..+)", host)
    return f"https://{match.group(1)}" if match else METRICS_AUDIENCE


def send_raw(client: Any, method: str, url: str, body: Any = None, *, params: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, content: str | bytes | None = None,
             expected: Collection[int] = (200, 201, 202, 204), **kwargs: Any) -> Any:
    """A request through a management client's own pipeline (credential, retries, TLS trust) for a link the
    SDK does not follow itself (Cost Management's ``nextLink``) or an answer read without the SDK's models;
    errors raised as the SDK raises them (401 -> ``ClientAuthenticationError``, 404 -> ``ResourceNotFoundError``,
    else ``HttpResponseError`` in ARM's error format), for ``translated`` to turn into ``providers.errors``.
    ``params`` are query parameters already URL-encoded (as the SDK's serializer encodes them), sent in the
    order given; ``content`` a body sent as it is (``body`` is sent as JSON); ``expected`` the statuses that are
    not errors. Returns the response."""
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    options: dict[str, Any] = {"params": params, "headers": headers}
    if content is not None:
        options["content"] = content
    else:
        options["json"] = body
    # azure-mgmt-monitor 7 names the generated clients' ``send_request`` ``_send_request`` (same code: the URL
    # joined to the client's endpoint, then its pipeline); every other client here has the public one.
    send = getattr(client, "send_request", None) or client._send_request
    response = send(HttpRequest(method, url, **options), **kwargs)
    if response.status_code not in expected:
        aexc.map_error(status_code=response.status_code, response=response,
                       error_map={401: aexc.ClientAuthenticationError, 404: aexc.ResourceNotFoundError})
        raise aexc.HttpResponseError(response=response, error_format=ARMErrorFormat)
    return response


def send_json(client: Any, method: str, url: str, **kwargs: Any) -> Any:
    """``send_raw``, its JSON answer parsed into plain dicts and lists (no SDK model objects: deserializing
    large metric answers into models costs far more CPU than the request); an unreadable body raises
    azure-core's ``DecodeError`` (``translated``: "unreadable answer")."""
    response = send_raw(client, method, url, **kwargs)
    try:
        return json.loads(response.content) if response.content else None
    except ValueError as exc:
        raise aexc.DecodeError(message=f"JSON is invalid: {exc}", response=response, error=exc) from exc


@contextmanager
def translated(operation: str, where: str) -> Iterator[None]:
    """Turn azure-core / azure-identity errors into ``providers.errors``, the place named."""
    place = f"azure {operation} at {where}"
    try:
        yield
    except aexc.ClientAuthenticationError as exc:
        raise AuthError(f"{place}: {_message(exc)}", hint=AUTH_HINT, code=_code(exc), status=getattr(exc, "status_code", None)) from exc
    except aexc.ResourceNotFoundError as exc:
        raise NotFound(f"{place}: {_message(exc)}", code=_code(exc), status=getattr(exc, "status_code", None)) from exc
    except aexc.HttpResponseError as exc:
        status = exc.status_code
        if status in (401, 403):
            raise AuthError(f"{place}: {_message(exc)}", hint=AUTH_HINT, code=_code(exc), status=getattr(exc, "status_code", None)) from exc
        if status == 404:
            raise NotFound(f"{place}: {_message(exc)}", code=_code(exc), status=getattr(exc, "status_code", None)) from exc
        if status == 429:
            raise Throttled(f"{place}: {_message(exc)}", hint="retries exhausted; try later", code=_code(exc), status=getattr(exc, "status_code", None)) from exc
        raise ProviderError(f"{place}: {_message(exc)}", code=_code(exc), status=getattr(exc, "status_code", None)) from exc
    except aexc.ServiceRequestError as exc:
        raise ProviderError(f"{place}: cannot reach the endpoint ({_first_line(exc)})",
                            hint="check network access, the Resource Manager URL and the CA bundle") from exc
    except aexc.ServiceResponseError as exc:
        raise ProviderError(f"{place}: the endpoint dropped the answer ({_first_line(exc)})",
                            hint="check network access and the Resource Manager URL") from exc
    except aexc.DecodeError as exc:
        raise ProviderError(f"{place}: unreadable answer ({_first_line(exc)})", hint="check the endpoint") from exc
    except aexc.AzureError as exc:
        raise ProviderError(f"{place}: {_first_line(exc)}") from exc


def _code(exc: aexc.AzureError) -> str | None:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) if error is not None else None
    if code:
        return str(code)
    status = getattr(exc, "status_code", None)
    return str(status) if status else None


def _message(exc: aexc.AzureError) -> str:
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "message", None):
        code = getattr(error, "code", None)
        text = f"{code}: {error.message}" if code else str(error.message)
    else:
        text = _first_line(exc)
    status = getattr(exc, "status_code", None)
    return (f"HTTP {status}: " if status else "") + text.strip().splitlines()[0][:500]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__
