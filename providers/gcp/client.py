"""The only module that imports the google SDKs: the Cloud Billing Catalog client, SKU parsing, errors.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import google.api_core.exceptions as gexc
import google.auth.exceptions
import requests
from google.api_core import retry as gretry
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import billing_v1
from google.protobuf import json_format

from providers.errors import AuthError, NotFound, ProviderError, Throttled

log = logging.getLogger(__name__)

COMPUTE_ENGINE_SERVICE = "services/6F81-5844-456A"
PAGE_SIZE = 5000  # the API's maximum
AUTH_HINT = ("run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS "
             "(the Cloud Billing API must be enabled on the quota project), or pass an API key")

ClientFactory = Callable[..., Any]


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
