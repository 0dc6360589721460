"""Compute Engine prices: the shipped catalog, refined by the Cloud Billing Catalog API when it answers.

GCP prices no machine type directly: a machine-hour is the sum of its parts' SKUs,
``vCPUs x core SKU + RAM GiB x RAM SKU + GPUs x GPU SKU`` of the machine's family in the region
(``a2-highgpu-1g`` = 12 x "A2 Instance Core" + 85 x "A2 Instance Ram" + 1 x "Nvidia Tesla A100 GPU").
N1 types with GPUs attached are named ``"{machine}+{count}x{accelerator}"`` and priced from the
"N1 Predefined" SKUs plus the GPU's. Machine shapes come from the shipped catalog.

A composed price is checked before use: on demand off the shipped price by more than 2x either way,
or Spot outside 5-100 % of on demand, is rejected (event=price_rejected) and the shipped quote kept;
a machine with a part missing keeps the shipped quote (event=price_incomplete). One ``list_skus``
pass serves every type of every region (the client caches the SKU list).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from providers.catalog import PriceCatalog, plausible_commitment, plausible_on_demand, plausible_spot
from providers.errors import ProviderError
from providers.gcp.client import CatalogClient, CatalogSku
from providers.model import Cloud, CommitmentRate, Instrument, PriceQuote, PricingModel

log = logging.getLogger(__name__)

SOURCE = "gcp-billing-catalog"
ON_DEMAND = "OnDemand"
SPOT = "Preemptible"  # the usageType of Spot (and legacy preemptible) SKUs
COMMIT = {1: "Commit1Yr", 3: "Commit3Yr"}

#: SKUs that price something other than a plain VM of the family (custom shapes, sole tenancy,
#: flex-start / calendar-mode capacity, reservations, licences, virtual workstations).
_EXCLUDE = ("custom", "sole tenancy", "premium", "reserved", "dws ", "flex start", "calendar mode",
            "extended", "virtual workstation", "vws", "licen")
_PART = re.compile(r"^(?:spot preemptible |preemptible )?(?P<family>.+?) instance (?P<part>core|ram) running in ")
_COMMIT_PART = re.compile(r"^commitment v1: (?:(?P<family>.+?) )?(?P<part>cpu|ram) in ")
_GPU = re.compile(r"\bnvidia (?:tesla )?(?P<name>[a-z0-9]+)(?: (?P<mem>\d+)gb)? gpu\b")
#: Memory (GiB) of the GPU a SKU without a size in its description prices ("Nvidia Tesla A100 GPU").
DEFAULT_GPU_MEMORY = {"A100": 40.0, "H100": 80.0, "H200": 141.0, "L4": 24.0, "T4": 16.0, "V100": 16.0,
                      "P100": 16.0, "P4": 8.0, "K80": 12.0}


@dataclass(frozen=True, slots=True)
class MachineShape:
    family: str  # "a2", "g2", "n1", ...
    vcpu: int
    memory_gib: Decimal
    gpu_model: str | None  # "A100", "L4", ... (upper case, no vendor)
    gpu_count: int
    gpu_memory_gib: float


def machine_shape(shipped: PriceCatalog, instance_type: str) -> MachineShape | None:
    """The type's shape from the shipped catalog (vCPU, RAM, GPUs); its family from the name."""
    spec = shipped.spec(Cloud.GCP, instance_type)
    if spec is None:
        return None
    family = instance_type.split("+", 1)[0].split("-", 1)[0].lower()
    gpus = spec.accelerators
    model = _gpu_name(gpus.model) if gpus and gpus.count else None
    memory = Decimal(str(spec.memory_gib))
    memory = memory.to_integral_value() if memory == memory.to_integral_value() else memory  # 85.0 -> 85
    return MachineShape(family, spec.vcpu, memory, model,
                        gpus.count if gpus and model else 0, gpus.memory_gib if gpus else 0.0)


def _gpu_name(model: str) -> str:
    name = model.upper().replace("NVIDIA", "").replace("TESLA", "").strip()
    return re.sub(r"[-\s]?\d+\s?GB$", "", name).strip() or name


class SkuIndex:
    """The SKUs of one region, keyed by (usage type, family, part) and (usage type, GPU, memory)."""

    def __init__(self, skus: Iterable[CatalogSku], region: str) -> None:
        self.region = region
        self._parts: dict[tuple[str, str, str], CatalogSku | None] = {}
        self._gpus: dict[tuple[str, str, float | None], CatalogSku | None] = {}
        for sku in skus:
            if region in sku.service_regions and _usable(sku):
                self._add(sku)

    def _add(self, sku: CatalogSku) -> None:
        text = sku.description.lower()
        if sku.resource_group == "GPU" or " gpu" in text:
            match = _GPU.search(text)
            if match and sku.usage_unit == "h":
                mem = float(match["mem"]) if match["mem"] else None
                self._put(self._gpus, (sku.usage_type, match["name"].upper(), mem), sku)
            return
        match = (_COMMIT_PART if text.startswith("commitment") else _PART).match(text)
        if match is None:
            return
        part = "ram" if match["part"] == "ram" else "core"
        if sku.usage_unit != ("GiBy.h" if part == "ram" else "h"):
            return
        family = (match["family"] or "n1").split()[0]  # "n1 predefined" -> "n1"; an N1 commitment names none
        self._put(self._parts, (sku.usage_type, family, part), sku)

    @staticmethod
    def _put(table: dict, key: tuple, sku: CatalogSku) -> None:
        if key in table and table[key] is not None and table[key].unit_price != sku.unit_price:
            log.warning("event=sku_ambiguous key=%s skus=%s,%s", "/".join(map(str, key)), table[key].sku_id, sku.sku_id)
            table[key] = None  # two prices for one part: better no live price than a wrong one
        elif key not in table:
            table[key] = sku

    def part(self, usage: str, family: str, part: str) -> CatalogSku | None:
        return self._parts.get((usage, family, part))

    def gpu(self, usage: str, model: str, memory_gib: float) -> CatalogSku | None:
        for (u, name, mem), sku in self._gpus.items():
            if u == usage and name == model and mem is not None and abs(mem - memory_gib) <= 1:
                return sku
        default = DEFAULT_GPU_MEMORY.get(model)
        if default is None or abs(default - memory_gib) <= 1:
            return self._gpus.get((usage, model, None))
        return None

    def compose(self, shape: MachineShape, usage: str) -> tuple[Decimal, tuple[str, ...]] | None:
        """The machine's hourly price under ``usage`` and the SKUs it came from; None if a part is missing."""
        core = self.part(usage, shape.family, "core")
        ram = self.part(usage, shape.family, "ram")
        gpu = self.gpu(usage, shape.gpu_model, shape.gpu_memory_gib) if shape.gpu_model else None
        if core is None or ram is None or (shape.gpu_model and gpu is None):
            return None
        price = shape.vcpu * core.unit_price + shape.memory_gib * ram.unit_price
        used = [core.sku_id, ram.sku_id]
        if gpu is not None:
            price += shape.gpu_count * gpu.unit_price
            used.append(gpu.sku_id)
        return price, tuple(used)


def _usable(sku: CatalogSku) -> bool:
    if sku.resource_family != "Compute" or sku.currency != "USD" or sku.unit_price <= 0:
        return False
    text = sku.description.lower()
    return not any(marker in text for marker in _EXCLUDE)


def quotes(
    catalog: CatalogClient,
    shipped: PriceCatalog,
    region: str,
    instance_types: Sequence[str],
    at: datetime,
    live: bool = True,
) -> list[PriceQuote]:
    """On-demand and Spot quotes for ``instance_types`` in ``region``: shipped, refined when plausible."""
    types = sorted(set(instance_types))
    out = {(q.instance_type, q.pricing_model): q for t in types for q in shipped.quotes(Cloud.GCP, region, t)}
    index = _index(catalog, region) if live and types else None
    if index is None:
        return list(out.values())
    for itype in types:
        shape = machine_shape(shipped, itype)
        if shape is None:
            log.info("event=price_unknown_shape cloud=gcp region=%s type=%s", region, itype)
            continue
        composed = index.compose(shape, ON_DEMAND)
        ref = out.get((itype, PricingModel.ON_DEMAND))
        if composed is None:
            log.info("event=price_incomplete cloud=gcp region=%s type=%s model=on-demand", region, itype)
        elif plausible_on_demand(composed[0], ref.hourly_usd if ref else None):
            out[(itype, PricingModel.ON_DEMAND)] = PriceQuote(Cloud.GCP, region, itype, PricingModel.ON_DEMAND,
                                                              composed[0], SOURCE, at)
        else:
            log.warning("event=price_rejected cloud=gcp region=%s type=%s model=on-demand live=%s catalog=%s skus=%s",
                        region, itype, composed[0], ref.hourly_usd if ref else None, ",".join(composed[1]))
        _refine_spot(out, index, shape, region, itype, at)
    return list(out.values())


def _refine_spot(out: dict, index: SkuIndex, shape: MachineShape, region: str, itype: str, at: datetime) -> None:
    spot = index.compose(shape, SPOT)
    od = out.get((itype, PricingModel.ON_DEMAND))
    if spot is None:
        log.info("event=price_incomplete cloud=gcp region=%s type=%s model=spot", region, itype)
    elif od is not None and plausible_spot(spot[0], od.hourly_usd):
        out[(itype, PricingModel.SPOT)] = PriceQuote(Cloud.GCP, region, itype, PricingModel.SPOT, spot[0], SOURCE, at)
    else:
        log.warning("event=price_rejected cloud=gcp region=%s type=%s model=spot live=%s on_demand=%s skus=%s",
                    region, itype, spot[0], od.hourly_usd if od else None, ",".join(spot[1]))


def commitment_rates(
    catalog: CatalogClient,
    shipped: PriceCatalog,
    region: str,
    instance_types: Sequence[str],
    at: datetime,
    live: bool = True,
) -> list[CommitmentRate]:
    """Resource-based CUD rates (1 and 3 years) composed from the Commit1Yr/Commit3Yr SKUs.

    The shipped catalog has no commitment prices, so only live, plausible rates come back
    (10-100 % of the on-demand quote); none when the API does not answer.
    """
    types = sorted(set(instance_types))
    index = _index(catalog, region) if live and types else None
    if index is None:
        return []
    out = []
    for itype in types:
        shape = machine_shape(shipped, itype)
        od = _on_demand_reference(index, shipped, region, itype, shape)
        if shape is None or od is None:
            continue
        for years, usage in COMMIT.items():
            composed = index.compose(shape, usage)
            if composed is None:
                log.info("event=price_incomplete cloud=gcp region=%s type=%s model=cud-%dy", region, itype, years)
            elif plausible_commitment(composed[0], od):
                out.append(CommitmentRate(Cloud.GCP, region, itype, Instrument.GCP_CUD, years, composed[0], SOURCE, at))
            else:
                log.warning("event=price_rejected cloud=gcp region=%s type=%s model=cud-%dy live=%s on_demand=%s",
                            region, itype, years, composed[0], od)
    return out


def _on_demand_reference(index: SkuIndex, shipped: PriceCatalog, region: str, itype: str,
                         shape: MachineShape | None) -> Decimal | None:
    """What ``quotes`` settles on for on demand (the plausible live price, else the shipped one), quietly."""
    ref = next((q for q in shipped.quotes(Cloud.GCP, region, itype) if q.pricing_model is PricingModel.ON_DEMAND), None)
    composed = index.compose(shape, ON_DEMAND) if shape else None
    if composed is not None and plausible_on_demand(composed[0], ref.hourly_usd if ref else None):
        return composed[0]
    return ref.hourly_usd if ref else None


def _index(catalog: CatalogClient, region: str) -> SkuIndex | None:
    try:
        return SkuIndex(catalog.list_skus(), region)
    except ProviderError as exc:
        log.info("event=pricing_api_unavailable cloud=gcp region=%s error=%r", region, exc.one_line())
        return None
