"""The only module that builds google SDK clients: credentials, endpoints, retries, call counting, errors.

``GcpClients`` holds one run's clients: Compute Engine (REST), Cloud Monitoring (gRPC), BigQuery,
Resource Manager (project discovery) and the Cloud Billing Catalog. Configuration is the standard
Application Default Credentials chain; ``endpoints`` (per service: ``compute``, ``monitoring``,
``bigquery``, ``cloudbilling``, ``cloudresourcemanager``, ``storage``) points a service at another host, e.g. a
local emulator; with endpoints set and no ADC found, anonymous credentials are used.

Real use: ``CatalogClient()`` talks to ``cloudbilling.googleapis.com`` with the standard Application
Default Credentials chain (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default
login``, the metadata server), or with an API key (``api_key=``; the catalog is public). A local
emulator: ``CatalogClient(endpoint="http://127.0.0.1:PORT")`` uses anonymous credentials.

SKUs are parsed once into ``CatalogSku`` records (Decimal prices, UTC times) so that nothing above
this module sees a protobuf, and the SKU list is cached on the client: one ``list_skus`` pass per run.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import google.api_core.exceptions as gexc
import google.auth
import google.auth.exceptions
import requests
from google.api_core import retry as gretry
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import billing_v1
from google.protobuf import json_format

from providers.errors import AuthError, ConfigurationError, NotFound, ProviderError, Throttled

log = logging.getLogger(__name__)

COMPUTE_ENGINE_SERVICE = "services/6F81-5844-456A"
PAGE_SIZE = 5000  # the API's maximum
AUTH_HINT = ("run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS "
             "(the Cloud Billing API must be enabled on the quota project), or pass an API key")

ClientFactory = Callable[..., Any]

#: Services whose endpoint can be configured, with their public hosts.
DEFAULT_HOSTS = {
    "compute": "compute.googleapis.com",
    "monitoring": "monitoring.googleapis.com",
    "bigquery": "bigquery.googleapis.com",
    "cloudbilling": "cloudbilling.googleapis.com",
    "cloudresourcemanager": "cloudresourcemanager.googleapis.com",
    "storage": "storage.googleapis.com",
}
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


@dataclass(frozen=True, slots=True)
class CatalogSku:
    """One public SKU: its current unit price (the tier starting at 0) and how it is categorized."""

    sku_id: str
    description: str
    resource_family: str  # "Compute", "Storage", ...
    resource_group: str  # "GPU", "CPU", "RAM", "N1Standard", ...
    usage_type: str  # "OnDemand", "Preemptible", "Commit1Yr", "Commit3Yr", ...
    service_regions: tuple[str, ...]
    usage_unit: str  # "h", "GiBy.h", ...
    unit_price: Decimal
    currency: str
    effective_time: datetime | None


class CatalogClient:
    """``billing_v1.CloudCatalogClient`` over REST, with call counting, error translation and a SKU cache.

    ``client_factory`` is the injection point (default ``billing_v1.CloudCatalogClient``); it gets the
    ``transport``, ``client_options`` and ``credentials`` keyword arguments. Transient failures
    (429, 500, 503, dropped connections) are retried for up to ``retry_timeout`` seconds.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        api_key: str | None = None,
        credentials: Any = None,
        client_factory: ClientFactory | None = None,
        retry_timeout: float = 30.0,
        retry_initial: float = 1.0,
        timeout: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        self._api_key = api_key
        self._credentials = credentials
        self._factory = client_factory or billing_v1.CloudCatalogClient
        self._retry = gretry.Retry(predicate=gretry.if_transient_error, initial=retry_initial,
                                   maximum=max(retry_initial, 10.0), multiplier=2.0, timeout=retry_timeout)
        self._timeout = timeout
        self._client: Any = None
        self._skus: dict[tuple[str, str], list[CatalogSku]] = {}
        self._failed: dict[tuple[str, str], ProviderError] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    @property
    def where(self) -> str:
        return self.endpoint or "cloudbilling.googleapis.com"

    def _sdk(self) -> Any:
        if self._client is None:
            options: dict[str, Any] = {}
            if self.endpoint:
                options["api_endpoint"] = self.endpoint
            if self._api_key:
                options["api_key"] = self._api_key
            credentials = self._credentials
            if credentials is None and self.endpoint and not self._api_key:
                credentials = AnonymousCredentials()  # a local emulator: no token to fetch
            with translated("CloudCatalog.Connect", self.where):
                self._client = self._factory(transport="rest", client_options=ClientOptions(**options),
                                             credentials=credentials)
        return self._client

    def list_services(self) -> list[tuple[str, str]]:
        """(name, display name) of every public service; one call per page."""
        out = []
        with translated("CloudCatalog.ListServices", self.where):
            pager = self._sdk().list_services(request={"page_size": PAGE_SIZE}, retry=self._retry,
                                              timeout=self._timeout)
            for page in pager.pages:
                self.calls["cloudbilling.ListServices"] += 1
                out.extend((s.name, s.display_name) for s in page.services)
        return out

    def list_skus(self, service: str = COMPUTE_ENGINE_SERVICE, currency: str = "USD") -> list[CatalogSku]:
        """Every SKU of ``service`` priced in ``currency``, fetched once per client; the list (or the
        failure, so that a dead API costs its retries once per run, not once per region) is cached."""
        key = (service, currency)
        with self._lock:
            if key in self._failed:
                raise self._failed[key]  # the run already paid for the retries once
            if key not in self._skus:
                try:
                    self._skus[key] = self._fetch_skus(service, currency)
                except ProviderError as exc:
                    self._failed[key] = exc
                    raise
            return self._skus[key]

    def _fetch_skus(self, service: str, currency: str) -> list[CatalogSku]:
        out: list[CatalogSku] = []
        with translated("CloudCatalog.ListSkus", self.where):
            request = {"parent": service, "page_size": PAGE_SIZE, "currency_code": currency}
            pager = self._sdk().list_skus(request=request, retry=self._retry, timeout=self._timeout)
            for page in pager.pages:
                self.calls["cloudbilling.ListSkus"] += 1
                out.extend(sku for sku in map(_parse_sku, page.skus) if sku is not None)
        log.info("event=skus_listed service=%s skus=%d pages=%d where=%s", service, len(out),
                 self.calls["cloudbilling.ListSkus"], self.where)
        return out


def _parse_sku(sku: Any) -> CatalogSku | None:
    """The SKU's current price (latest pricing info, tier starting at 0); None when it has none."""
    infos = list(sku.pricing_info)
    if not infos:
        return None
    info = max(infos, key=lambda i: _utc(i.effective_time) or datetime.min.replace(tzinfo=timezone.utc))
    expr = info.pricing_expression
    tier = next((t for t in expr.tiered_rates if t.start_usage_amount == 0), None)
    if tier is None:
        return None
    money = tier.unit_price
    price = Decimal(int(money.units)) + Decimal(int(money.nanos)) / Decimal(1_000_000_000)
    cat = sku.category
    return CatalogSku(
        sku_id=sku.sku_id, description=sku.description, resource_family=cat.resource_family,
        resource_group=cat.resource_group, usage_type=cat.usage_type,
        service_regions=tuple(sku.service_regions), usage_unit=expr.usage_unit, unit_price=price,
        currency=money.currency_code or "USD", effective_time=_utc(info.effective_time),
    )


def _utc(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


@contextmanager
def translated(operation: str, where: str) -> Iterator[None]:
    """Turn google.api_core / google.auth / transport errors into ``providers.errors``, place named."""
    place = f"gcp {operation} at {where}"
    try:
        yield
    except (gexc.Unauthenticated, gexc.PermissionDenied, gexc.Forbidden, gexc.Unauthorized) as exc:
        raise AuthError(f"{place}: {_first_line(exc)}", hint=AUTH_HINT, code=str(exc.code)) from exc
    except (gexc.TooManyRequests, gexc.ResourceExhausted) as exc:
        raise Throttled(f"{place}: {_first_line(exc)}", hint="retries exhausted; try later",
                        code=str(exc.code)) from exc
    except gexc.NotFound as exc:
        raise NotFound(f"{place}: {_first_line(exc)}", code=str(exc.code)) from exc
    except gexc.RetryError as exc:
        cause = exc.cause
        if isinstance(cause, (gexc.TooManyRequests, gexc.ResourceExhausted)):
            raise Throttled(f"{place}: retries exhausted: {_first_line(cause)}", hint="try later") from exc
        if isinstance(cause, requests.exceptions.RequestException):
            raise ProviderError(f"{place}: cannot reach the endpoint ({type(cause).__name__}; retries exhausted)",
                                hint="check network access and the endpoint") from exc
        raise ProviderError(f"{place}: retries exhausted: {_first_line(cause or exc)}",
                            hint="check network access and the endpoint") from exc
    except gexc.GoogleAPICallError as exc:
        raise ProviderError(f"{place}: {_first_line(exc)}", code=str(exc.code)) from exc
    except gexc.GoogleAPIError as exc:
        raise ProviderError(f"{place}: {_first_line(exc)}") from exc
    except google.auth.exceptions.InvalidOperation as exc:  # a 401 answered to anonymous credentials
        raise AuthError(f"{place}: the endpoint refused the request as unauthenticated (anonymous credentials "
                        "cannot be refreshed)", hint=AUTH_HINT) from exc
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise AuthError(f"{place}: no Application Default Credentials found", hint=AUTH_HINT) from exc
    except google.auth.exceptions.GoogleAuthError as exc:
        raise AuthError(f"{place}: {_first_line(exc)}", hint=AUTH_HINT) from exc
    except requests.exceptions.RequestException as exc:
        raise ProviderError(f"{place}: cannot reach the endpoint ({type(exc).__name__})",
                            hint="check network access and the endpoint") from exc
    except (json_format.Error, ValueError) as exc:  # an answer that is not the API's JSON
        raise ProviderError(f"{place}: unreadable answer ({_first_line(exc)})", hint="check the endpoint") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


class GcpClients:
    """One run's google clients, built lazily and cached, with call counting and shared retries.

    ``projects``: the projects to audit (empty: discovered with Resource Manager ``projects.search``,
    falling back to the ADC project). ``endpoints``: service -> ``http://host:port`` (REST) or
    ``host:port`` (gRPC, Monitoring; a plain-text channel for loopback/``http://`` addresses).
    ``credentials``: injected credentials (default: ADC). Provider modules count their calls with
    ``count("compute.Instances.AggregatedList")`` once per request (page) and wrap calls in
    ``translated(operation, clients.where(service))``.
    """

    def __init__(
        self,
        *,
        projects: Sequence[str] = (),
        endpoints: Mapping[str, str] | None = None,
        credentials: Any = None,
        retry_timeout: float = 60.0,
        retry_initial: float = 1.0,
        timeout: float = 120.0,
    ) -> None:
        unknown = set(endpoints or {}) - set(DEFAULT_HOSTS)
        if unknown:
            raise ConfigurationError(f"gcp: unknown endpoint service(s) {', '.join(sorted(unknown))}",
                                     hint=f"services: {', '.join(DEFAULT_HOSTS)}")
        self.configured_projects = tuple(projects)
        self.endpoints = {k: v.rstrip("/") for k, v in (endpoints or {}).items() if v}
        self._credentials = credentials
        self._adc_project: str | None = None
        self.retry = gretry.Retry(predicate=gretry.if_transient_error, initial=retry_initial,
                                  maximum=max(retry_initial, 10.0), multiplier=2.0, timeout=retry_timeout)
        self.timeout = timeout
        self._retry_timeout, self._retry_initial = retry_timeout, retry_initial
        self._clients: dict[Any, Any] = {}
        self._lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self._catalog: CatalogClient | None = None

    # -- configuration -------------------------------------------------------------------------
    def where(self, service: str) -> str:
        return self.endpoints.get(service, DEFAULT_HOSTS[service])

    def count(self, operation: str, n: int = 1) -> None:
        with self._lock:
            self.calls[operation] += n

    @property
    def credentials(self) -> Any:
        with self._lock:
            if self._credentials is None:
                try:
                    self._credentials, self._adc_project = google.auth.default(scopes=SCOPES)
                except google.auth.exceptions.DefaultCredentialsError as exc:
                    if not self.endpoints:
                        raise AuthError("gcp: no Application Default Credentials found", hint=AUTH_HINT) from exc
                    log.info("event=gcp_anonymous reason=no_adc endpoints=%s", ",".join(sorted(self.endpoints)))
                    self._credentials = AnonymousCredentials()  # endpoints configured: an emulator or proxy
            return self._credentials

    def _options(self, service: str) -> ClientOptions:
        endpoint = self.endpoints.get(service)
        return ClientOptions(api_endpoint=endpoint) if endpoint else ClientOptions()

    def _cached(self, key: Any, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._clients:
                with translated(f"{key[0]}.Connect", self.where(key[0])):
                    self._clients[key] = build()
            return self._clients[key]

    # -- clients -------------------------------------------------------------------------------
    def compute(self, kind: str) -> Any:
        """A ``compute_v1`` client over REST, e.g. ``compute("InstancesClient")``, ``compute("ZoneOperationsClient")``.

        Long-running calls use the ``*_unary`` variants and ``wait_zone_operation``: the SDK's own
        operation objects poll compute.googleapis.com whatever the endpoint.
        """
        from google.cloud import compute_v1

        return self._cached(("compute", kind), lambda: getattr(compute_v1, kind)(
            transport="rest", client_options=self._options("compute"), credentials=self.credentials))

    def monitoring(self) -> Any:
        """``monitoring_v3.MetricServiceClient`` over gRPC (the library has no REST transport)."""
        from google.cloud import monitoring_v3

        def build() -> Any:
            endpoint = self.endpoints.get("monitoring")
            if endpoint and _plaintext(endpoint):
                import grpc
                from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport

                channel = grpc.insecure_channel(_host_port(endpoint), options=[
                    ("grpc.max_receive_message_length", 64 * 1024 * 1024)])
                return monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))
            options = ClientOptions(api_endpoint=_host_port(endpoint)) if endpoint else ClientOptions()
            return monitoring_v3.MetricServiceClient(credentials=self.credentials, client_options=options)

        return self._cached(("monitoring", "MetricServiceClient"), build)

    def bigquery(self, project: str) -> Any:
        """``bigquery.Client`` billing queries run in (and are billed to) ``project``."""
        from google.cloud import bigquery

        return self._cached(("bigquery", project), lambda: bigquery.Client(
            project=project, credentials=self.credentials, client_options=self._options("bigquery")))

    def storage(self, project: str | None = None) -> Any:
        """``storage.Client`` for reading billing files from Cloud Storage."""
        from google.cloud import storage

        return self._cached(("storage", project or ""), lambda: storage.Client(
            project=project or (self.configured_projects[0] if self.configured_projects else None),
            credentials=self.credentials, client_options=self._options("storage")))

    def projects_client(self) -> Any:
        from google.cloud import resourcemanager_v3

        return self._cached(("cloudresourcemanager", "ProjectsClient"), lambda: resourcemanager_v3.ProjectsClient(
            transport="rest", client_options=self._options("cloudresourcemanager"), credentials=self.credentials))

    def catalog(self) -> CatalogClient:
        with self._lock:
            if self._catalog is None:
                self._catalog = CatalogClient(endpoint=self.endpoints.get("cloudbilling"),
                                              credentials=self._credentials if self.endpoints.get("cloudbilling")
                                              else None, retry_timeout=min(self._retry_timeout, 15.0),
                                              retry_initial=self._retry_initial)
            return self._catalog

    # -- projects ------------------------------------------------------------------------------
    def projects(self) -> list[str]:
        """The configured projects, else every ACTIVE project the credentials can see, else the ADC project."""
        if self.configured_projects:
            return list(self.configured_projects)
        found: list[str] = []
        with translated("cloudresourcemanager.Projects.SearchProjects", self.where("cloudresourcemanager")):
            pager = self.projects_client().search_projects(request={"query": "state:ACTIVE"}, retry=self.retry,
                                                          timeout=self.timeout)
            for page in pager.pages:
                self.count("cloudresourcemanager.Projects.SearchProjects")
                found += [p.project_id for p in page.projects if p.project_id]
        if not found:
            _ = self.credentials
            if self._adc_project:
                found = [self._adc_project]
        if not found:
            raise ConfigurationError("gcp: no project to audit (none configured, none visible to the credentials)",
                                     hint="set gcp.projects in the config file or GOOGLE_CLOUD_PROJECT")
        return sorted(set(found))

    def all_calls(self) -> dict[str, int]:
        calls = Counter(self.calls)
        if self._catalog is not None:
            calls.update(self._catalog.calls)
        return dict(calls)


def wait_zone_operation(clients: GcpClients, project: str, zone: str, operation: Any, *,
                        timeout: float = 600.0, sleep: Callable[[float], None] | None = None) -> Any:
    """Wait for a zonal Compute Engine operation (``*_unary`` result) with a ``ZoneOperationsClient`` of the
    same endpoint; raise ``ProviderError`` naming the operation when it ends in error."""
    import time as _time

    pause = sleep or _time.sleep
    ops = clients.compute("ZoneOperationsClient")
    name = operation.name
    deadline = _time.monotonic() + timeout
    current = operation
    while str(getattr(current.status, "name", current.status)) != "DONE":
        if _time.monotonic() > deadline:
            raise ProviderError(f"gcp compute operation {name} in {zone}: not done after {timeout:.0f} s")
        with translated("compute.ZoneOperations.Wait", clients.where("compute")):
            clients.count("compute.ZoneOperations.Wait")
            current = ops.wait(project=project, zone=zone, operation=name, retry=clients.retry,
                               timeout=clients.timeout)
        if str(getattr(current.status, "name", current.status)) != "DONE":
            pause(0.5)
    errors = list(current.error.errors) if current.error else []
    if errors:
        text = "; ".join(f"{e.code}: {e.message}" for e in errors)
        raise ProviderError(f"gcp compute operation {name} ({current.operation_type}) in {zone} failed: {text}",
                            code=errors[0].code)
    return current


def _plaintext(endpoint: str) -> bool:
    if endpoint.startswith("http://"):
        return True
    if endpoint.startswith("https://"):
        return False
    host = _host_port(endpoint).rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


def _host_port(endpoint: str | None) -> str:
    return (endpoint or "").split("://", 1)[-1].rstrip("/")
