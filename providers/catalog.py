"""The offline GPU price catalog shipped with the package (``providers/data/*_gpu_catalog.csv``).

Every price carries its source and date. Live price APIs refine these numbers when they answer
(``providers/<cloud>/pricing.py``); the shipped copy is the fallback, and the yardstick that
rejects implausible live prices.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources

from providers.model import Accelerators, Cloud, InstanceTypeSpec, PriceQuote, PricingModel

#: The region whose price stands in, flagged as such, where the catalog lacks the asked region.
REFERENCE_REGION = {Cloud.AWS: "us-east-1"}


class CatalogError(ValueError):
    """The shipped catalog file is malformed (names the file and line)."""


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    cloud: Cloud
    instance_type: str
    region: str
    gpu_model: str
    gpu_count: int
    gpu_memory_gib: float
    vcpu: int
    memory_gib: float
    on_demand_hourly: Decimal
    on_demand_source: str
    on_demand_as_of: date
    spot_savings_pct: float | None = None
    spot_interruption: str | None = None
    spot_source: str | None = None
    spot_as_of: date | None = None

    @property
    def spot_hourly(self) -> Decimal | None:
        if self.spot_savings_pct is None:
            return None
        factor = Decimal(str(round(1 - self.spot_savings_pct / 100, 4)))
        return (self.on_demand_hourly * factor).quantize(Decimal("0.0001"))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


class PriceCatalog:
    def __init__(self, entries: list[CatalogEntry]) -> None:
        self._by_key = {(e.cloud, e.region, e.instance_type): e for e in entries}

    @classmethod
    def shipped(cls, cloud: Cloud) -> PriceCatalog:
        return _load_shipped(cloud)

    def __len__(self) -> int:
        return len(self._by_key)

    def entry(self, cloud: Cloud, region: str, instance_type: str) -> tuple[CatalogEntry | None, bool]:
        """The entry for (region, type); the bool says it is the reference region's stand-in."""
        exact = self._by_key.get((cloud, region, instance_type))
        if exact is not None:
            return exact, False
        ref_region = REFERENCE_REGION.get(cloud)
        fallback = self._by_key.get((cloud, ref_region, instance_type)) if ref_region else None
        return fallback, fallback is not None

    def spec(self, cloud: Cloud, instance_type: str) -> InstanceTypeSpec | None:
        """The type's shape from the catalog: the fallback when the cloud's own type API does not know it."""
        entry = next((e for (c, _, t), e in self._by_key.items() if c == cloud and t == instance_type), None)
        if entry is None:
            return None
        gpus = Accelerators(entry.gpu_model, entry.gpu_count, entry.gpu_memory_gib) if entry.gpu_count else None
        return InstanceTypeSpec(instance_type, entry.vcpu, entry.memory_gib, gpus)

    def offered(self, cloud: Cloud, region: str) -> list[CatalogEntry]:
        """Entries priced in exactly ``region`` (no stand-in): the types its price list says exist there."""
        return [e for (c, r, _), e in self._by_key.items() if c == cloud and r == region]

    def entries(self, cloud: Cloud | None = None) -> list[CatalogEntry]:
        return [e for e in self._by_key.values() if cloud is None or e.cloud == cloud]

    def quotes(self, cloud: Cloud, region: str, instance_type: str) -> list[PriceQuote]:
        entry, stand_in = self.entry(cloud, region, instance_type)
        if entry is None:
            return []
        note = f" ({entry.region} price; {region} not in catalog)" if stand_in else ""
        out = [
            PriceQuote(cloud, region, instance_type, PricingModel.ON_DEMAND, entry.on_demand_hourly,
                       f"catalog: {entry.on_demand_source}{note}", _midnight(entry.on_demand_as_of))
        ]
        spot = entry.spot_hourly
        if spot is not None:
            out.append(
                PriceQuote(cloud, region, instance_type, PricingModel.SPOT, spot,
                           f"catalog: typical spot discount {entry.spot_savings_pct:g}% ({entry.spot_source}){note}",
                           _midnight(entry.spot_as_of or entry.on_demand_as_of))
            )
        return out


@cache
def _load_shipped(cloud: Cloud) -> PriceCatalog:
    name = f"{cloud.value}_gpu_catalog.csv"
    ref = resources.files("providers") / "data" / name
    if not ref.is_file():
        return PriceCatalog([])
    return PriceCatalog(parse_catalog(ref.read_text(encoding="utf-8"), cloud, name))


def parse_catalog(text: str, cloud: Cloud, source_name: str) -> list[CatalogEntry]:
    entries = []
    for lineno, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            entries.append(_entry(row, cloud))
        except (KeyError, ValueError, InvalidOperation, TypeError) as exc:
            raise CatalogError(f"{source_name}:{lineno}: bad catalog row ({exc})") from exc
    return entries


def _entry(row: dict[str, str], cloud: Cloud) -> CatalogEntry:
    savings = row.get("spot_savings_pct") or ""
    spot_as_of = row.get("spot_as_of") or ""
    price = Decimal(row["on_demand_usd_per_hour"])
    if price <= 0:
        raise ValueError(f"non-positive price {price}")
    return CatalogEntry(
        cloud=cloud,
        instance_type=row["instance_type"].strip(),
        region=row["region"].strip(),
        gpu_model=row["gpu_model"].strip(),
        gpu_count=int(row["gpu_count"]),
        gpu_memory_gib=float(row["gpu_memory_gib"]),
        vcpu=int(row["vcpu"]),
        memory_gib=float(row["memory_gib"]),
        on_demand_hourly=price,
        on_demand_source=row["on_demand_source"].strip(),
        on_demand_as_of=date.fromisoformat(row["on_demand_as_of"].strip()),
        spot_savings_pct=float(savings) if savings.strip() else None,
        spot_interruption=(row.get("spot_interruption") or "").strip() or None,
        spot_source=(row.get("spot_source") or "").strip() or None,
        spot_as_of=date.fromisoformat(spot_as_of.strip()) if spot_as_of.strip() else None,
    )
