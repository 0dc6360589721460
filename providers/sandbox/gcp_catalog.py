"""A small local emulator of the Cloud Billing Catalog API (``cloudbilling.googleapis.com/v1``).

Written from the public reference of ``services.list`` and ``services.skus.list``: ``GET /v1/services``
and ``GET /v1/services/{id}/skus`` with ``pageSize`` / ``pageToken`` -> ``nextPageToken`` paging and
``currencyCode``; errors as ``{"error": {"code", "message", "status"}}``. Tests and the demo point
``providers.gcp.client.CatalogClient(endpoint=emulator.url)`` at it; failures (HTTP 429/500/503, any
status) and implausible prices can be injected.

The built-in SKUs carry real public prices (USD, Compute Engine ``services/6F81-5844-456A``):

- A2 / A100 on demand: SKUs 039F-D0DA-4055 (Nvidia Tesla A100 GPU, 2.933908 $/h), 2922-40C5-B19F
  (A2 Instance Core, 0.031611 $/h) and 2390-DCAF-DA38 (A2 Instance Ram, 0.004237 $/GiB-h), as
  returned by the Catalog API with effectiveTime 2023-03-24 (captured in opencost/opencost
  pkg/cloud/gcp/test/skus.json). They compose a2-highgpu-1g (12 vCPU, 85 GiB, 1 A100) to the
  published 3.673385 $/h (cloud.google.com/compute/gpus-pricing).
- A2 / A100 Spot: SKUs 39D4-516A-0317, 3178-715E-CFB6, 65A3-16DB-D57A (IDs and descriptions as
  listed by the live API in a public 2026 launch script); unit prices 1.5399 / 0.01659 / 0.00222
  from a Catalog API pull of 2026-08-02 (a2-highgpu-1g Spot 1.92768 $/h).
- A100 DWS flex-start 1.61365 $/h (same pull): a decoy the price composer must not take.
- A100 commitments: 1.84836204 (1 year) and 1.0268678 (3 years) $/GPU-h, the GPU pricing page's
  commitment columns; A2 core/RAM commitments 0.019915 / 0.002669 (1 year) and 0.014225 / 0.001907
  (3 years): the published 37 % / 55 % resource-based CUD discounts on the A2 rates above.
- A100 in EMEA (europe-west4) 3.227299 $/h, GPU pricing page: a region decoy.
- G2 / L4 on demand: L4 0.56004 $/h (SKU A88A-5A60-E821; skypilot-org/skypilot-catalog
  catalogs/v7/gcp/vms.csv, us-central1), G2 core 0.024988 $/h and RAM 0.0029275 $/GiB-h (a public
  worked example from the Catalog API and a recorded g2-standard-8 rate of 0.853624312 $/h); they
  compose g2-standard-4 to 0.706832 $/h (pricing page: 0.70683228). L4 Spot 0.2231 $/h (same
  SkyPilot file); the G2 Spot core/RAM SKUs are left out on purpose (an incomplete machine).
- N1 + T4: N1 Predefined core 0.031611 $/h and RAM 0.004237 $/GiB-h (n1-standard-8 = 0.379998
  $/h on the VM pricing page), Tesla T4 0.35 $/h with 1 / 3 year commitments 0.22 / 0.16 (GPU
  pricing page). SKU IDs marked ``EMU-`` are the emulator's own where the real one is not public.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from providers.sandbox.json_server import JsonApiServer

log = logging.getLogger(__name__)

COMPUTE_ENGINE = "6F81-5844-456A"
SERVICES = ((COMPUTE_ENGINE, "Compute Engine"), ("E000-3F24-B8AA", "Cloud TPU"), ("95FF-2EF5-5EA1", "Cloud Storage"))
AMERICAS = ("us-central1", "us-east1", "us-west1")
MAX_PAGE_SIZE = 5000  # the real API's cap
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


@dataclass(frozen=True)
class EmulatedSku:
    sku_id: str
    description: str
    resource_group: str
    usage_type: str
    regions: tuple[str, ...]
    unit: str  # "h" or "GiBy.h"
    price: Decimal
    effective: str = "2026-01-01T08:00:00Z"


def _sku(sku_id: str, description: str, group: str, usage: str, price: str, unit: str = "h",
         regions: tuple[str, ...] = AMERICAS, effective: str = "2026-01-01T08:00:00Z") -> EmulatedSku:
    return EmulatedSku(sku_id, description, group, usage, regions, unit, Decimal(price), effective)


DEFAULT_SKUS: tuple[EmulatedSku, ...] = (
    _sku("039F-D0DA-4055", "Nvidia Tesla A100 GPU running in Americas", "GPU", "OnDemand", "2.933908",
         effective="2023-03-24T10:52:50.681Z"),
    _sku("2922-40C5-B19F", "A2 Instance Core running in Americas", "CPU", "OnDemand", "0.031611",
         effective="2023-03-24T10:52:50.681Z"),
    _sku("2390-DCAF-DA38", "A2 Instance Ram running in Americas", "RAM", "OnDemand", "0.004237", "GiBy.h",
         effective="2023-03-24T10:52:50.681Z"),
    _sku("39D4-516A-0317", "Nvidia Tesla A100 GPU attached to Spot Preemptible VMs running in Americas", "GPU",
         "Preemptible", "1.5399"),
    _sku("3178-715E-CFB6", "Spot Preemptible A2 Instance Core running in Americas", "CPU", "Preemptible", "0.01659"),
    _sku("65A3-16DB-D57A", "Spot Preemptible A2 Instance Ram running in Americas", "RAM", "Preemptible", "0.00222",
         "GiBy.h"),
    _sku("EMU-A100-DWS", "Nvidia Tesla A100 GPU attached to DWS Defined Duration VMs running in Americas", "GPU",
         "OnDemand", "1.61365"),
    _sku("EMU-A100-EMEA", "Nvidia Tesla A100 GPU running in EMEA", "GPU", "OnDemand", "3.227299",
         regions=("europe-west4",)),
    _sku("EMU-A100-C1Y", "Commitment v1: Nvidia Tesla A100 GPU in Americas for 1 Year", "GPU", "Commit1Yr",
         "1.84836204"),
    _sku("EMU-A100-C3Y", "Commitment v1: Nvidia Tesla A100 GPU in Americas for 3 Year", "GPU", "Commit3Yr",
         "1.0268678"),
    _sku("EMU-A2-CPU-C1Y", "Commitment v1: A2 Cpu in Americas for 1 Year", "CPU", "Commit1Yr", "0.019915"),
    _sku("EMU-A2-RAM-C1Y", "Commitment v1: A2 Ram in Americas for 1 Year", "RAM", "Commit1Yr", "0.002669", "GiBy.h"),
    _sku("EMU-A2-CPU-C3Y", "Commitment v1: A2 Cpu in Americas for 3 Years", "CPU", "Commit3Yr", "0.014225"),
    _sku("EMU-A2-RAM-C3Y", "Commitment v1: A2 Ram in Americas for 3 Years", "RAM", "Commit3Yr", "0.001907", "GiBy.h"),
    _sku("A88A-5A60-E821", "Nvidia L4 GPU running in Americas", "GPU", "OnDemand", "0.56004"),
    _sku("EMU-G2-CORE", "G2 Instance Core running in Americas", "CPU", "OnDemand", "0.024988"),
    _sku("EMU-G2-RAM", "G2 Instance Ram running in Americas", "RAM", "OnDemand", "0.0029275", "GiBy.h"),
    _sku("EMU-L4-SPOT", "Nvidia L4 GPU attached to Spot Preemptible VMs running in Americas", "GPU", "Preemptible",
         "0.2231"),
    _sku("EMU-N1-CORE", "N1 Predefined Instance Core running in Americas", "N1Standard", "OnDemand", "0.031611"),
    _sku("EMU-N1-RAM", "N1 Predefined Instance Ram running in Americas", "N1Standard", "OnDemand", "0.004237",
         "GiBy.h"),
    _sku("EMU-T4", "Nvidia Tesla T4 GPU running in Americas", "GPU", "OnDemand", "0.35"),
    _sku("EMU-T4-C1Y", "Commitment v1: Nvidia Tesla T4 GPU in Americas for 1 Year", "GPU", "Commit1Yr", "0.22"),
    _sku("EMU-T4-C3Y", "Commitment v1: Nvidia Tesla T4 GPU in Americas for 3 Year", "GPU", "Commit3Yr", "0.16"),
)


def sku_json(sku: EmulatedSku, service: str = COMPUTE_ENGINE) -> dict[str, Any]:
    """One SKU as ``services.skus.list`` returns it."""
    units = int(sku.price)
    nanos = int((sku.price - units) * 1_000_000_000)
    ram = sku.unit == "GiBy.h"
    return {
        "name": f"services/{service}/skus/{sku.sku_id}",
        "skuId": sku.sku_id,
        "description": sku.description,
        "category": {"serviceDisplayName": "Compute Engine", "resourceFamily": "Compute",
                     "resourceGroup": sku.resource_group, "usageType": sku.usage_type},
        "serviceRegions": list(sku.regions),
        "pricingInfo": [{
            "summary": "",
            "pricingExpression": {
                "usageUnit": sku.unit,
                "usageUnitDescription": "gibibyte hour" if ram else "hour",
                "baseUnit": "By.s" if ram else "s",
                "baseUnitDescription": "byte second" if ram else "second",
                "baseUnitConversionFactor": 3865470566400 if ram else 3600,
                "displayQuantity": 1,
                "tieredRates": [{"startUsageAmount": 0,
                                 "unitPrice": {"currencyCode": "USD", "units": str(units), "nanos": nanos}}],
            },
            "currencyConversionRate": 1,
            "effectiveTime": sku.effective,
        }],
        "serviceProviderName": "Google",
        "geoTaxonomy": {"type": "MULTI_REGIONAL" if len(sku.regions) > 1 else "REGIONAL",
                        "regions": list(sku.regions)},
    }


class GcpCatalogEmulator(JsonApiServer):
    """The emulator on 127.0.0.1 (an ephemeral port); use as a context manager or start()/stop()."""

    name = "gcp-catalog-emulator"
    content_type = "application/json; charset=UTF-8"

    def __init__(self, skus: Iterable[EmulatedSku] = DEFAULT_SKUS, *, max_page_size: int = MAX_PAGE_SIZE) -> None:
        super().__init__()
        self._skus = list(skus)
        self.max_page_size = max_page_size

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return _error(status, message)

    def set_price(self, sku_id: str, price: Decimal | str) -> None:
        """Change one SKU's unit price (e.g. to something implausible)."""
        with self._lock:
            self._skus = [replace(s, price=Decimal(str(price))) if s.sku_id == sku_id else s for s in self._skus]

    def remove_sku(self, sku_id: str) -> None:
        with self._lock:
            self._skus = [s for s in self._skus if s.sku_id != sku_id]

    # -- API ---------------------------------------------------------------------------------
    def answer(self, path: str, query: dict[str, list[str]], host: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            skus = list(self._skus)
        parts = path.strip("/").split("/")
        if parts == ["v1", "services"]:
            items = [{"name": f"services/{sid}", "serviceId": sid, "displayName": name,
                      "businessEntityName": "businessEntities/GCP"} for sid, name in SERVICES]
            return self._page(items, "services", query)
        if len(parts) == 4 and parts[:2] == ["v1", "services"] and parts[3] == "skus":
            service = parts[2]
            if service not in {sid for sid, _ in SERVICES}:
                return 404, _error(404, f"Service {service} does not exist.")
            currency = (query.get("currencyCode") or ["USD"])[0]
            if currency != "USD":
                return 400, _error(400, f"currencyCode {currency}: this emulator prices in USD only")
            items = [sku_json(s, service) for s in skus] if service == COMPUTE_ENGINE else []
            return self._page(items, "skus", query)
        return 404, _error(404, f"The requested URL /{'/'.join(parts)} was not found on this server.")

    def _page(self, items: list[dict[str, Any]], key: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        try:
            size = int((query.get("pageSize") or ["0"])[0])
            start = _decode_token((query.get("pageToken") or [""])[0])
        except ValueError:
            return 400, _error(400, "Invalid pageSize or pageToken.")
        size = self.max_page_size if size <= 0 else min(size, self.max_page_size)
        body: dict[str, Any] = {key: items[start:start + size], "nextPageToken": ""}
        if start + size < len(items):
            body["nextPageToken"] = _encode_token(start + size)
        return 200, body


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_token(token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("bad token") from exc
    if not text.startswith("offset:"):
        raise ValueError("bad token")
    return int(text.removeprefix("offset:"))


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}
