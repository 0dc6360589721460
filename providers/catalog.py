"""The offline GPU price catalog shipped with the package (``providers/data/*_gpu_catalog.csv``).

Every price carries its source and date. Live price APIs refine these numbers when they answer
(``providers/<cloud>/pricing.py``); the shipped copy is the fallback, and the yardstick that
rejects implausible live prices. ``providers/data/commitment_rates.csv`` adds the published
1- and 3-year commitment rates (savings plans, reserved instances, CUDs, reservations) per
(cloud, region, type), where a public figure exists.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources

from providers.model import (
    Accelerators,
    Cloud,
    CommitmentRate,
    InstanceTypeSpec,
    Instrument,
    PriceQuote,
    PricingModel,
)

#: The region whose price stands in, flagged as such, where the catalog lacks the asked region.
REFERENCE_REGION = {Cloud.AWS: "us-east-1", Cloud.GCP: "us-central1", Cloud.AZURE: "eastus"}

COMMITMENTS_FILE = "commitment_rates.csv"
COMMITMENT_COLUMNS = ("cloud", "region", "instance_type", "instrument", "term_years", "hourly_usd", "source", "as_of")
COMMITMENT_TERMS = (1, 3)
#: The cloud each instrument is sold on (its value's prefix: "aws-...", "gcp-...", "azure-...").
INSTRUMENT_CLOUD = {i: Cloud(i.value.split("-", 1)[0]) for i in Instrument}


#: A live price is checked against the shipped catalog before use (moto, for one, answers spot history
#: with 0.00001 dated 2006). On-demand: ratio to the shipped price; spot and commitments: fraction of on-demand.
ON_DEMAND_BOUNDS = (Decimal("0.5"), Decimal("2.0"))
SPOT_BOUNDS = (Decimal("0.05"), Decimal("1.0"))
COMMITMENT_BOUNDS = (Decimal("0.1"), Decimal("1.0"))
ABSOLUTE_BOUNDS = (Decimal("0.01"), Decimal(500))  # $/h, where no shipped price exists


def plausible_on_demand(price: Decimal, shipped: Decimal | None) -> bool:
    """A live on-demand price within 0.5-2x of the shipped one (0.01-500 $/h where none is shipped)."""
    if price <= 0:
        return False
    if shipped is None:
        return ABSOLUTE_BOUNDS[0] <= price <= ABSOLUTE_BOUNDS[1]
    return ON_DEMAND_BOUNDS[0] <= price / shipped <= ON_DEMAND_BOUNDS[1]


def plausible_spot(price: Decimal, on_demand: Decimal | None) -> bool:
    """A spot price within 5-100 % of on-demand."""
    return on_demand is not None and SPOT_BOUNDS[0] * on_demand <= price <= SPOT_BOUNDS[1] * on_demand


def plausible_commitment(rate: Decimal, on_demand: Decimal | None) -> bool:
    """A commitment's hourly rate within 10-100 % of on-demand."""
    return on_demand is not None and COMMITMENT_BOUNDS[0] * on_demand <= rate <= COMMITMENT_BOUNDS[1] * on_demand


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
    def __init__(self, entries: Iterable[CatalogEntry], commitments: Iterable[CommitmentRate] = ()) -> None:
        self._by_key = {(e.cloud, e.region, e.instance_type): e for e in entries}
        self._commitments: dict[tuple[Cloud, str, str], list[CommitmentRate]] = {}
        for rate in commitments:
            self._commitments.setdefault((rate.cloud, rate.region, rate.instance_type), []).append(rate)

    @classmethod
    def shipped(cls, cloud: Cloud) -> PriceCatalog:
        """The shipped catalog of ``cloud``, with that cloud's shipped commitment rates."""
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

    def listing(self, cloud: Cloud, instance_type: str | None = None, region: str | None = None) -> list[CatalogEntry]:
        """The entries of ``cloud`` (optionally one type and/or one region), sorted by type, then region."""
        rows = [e for e in self.entries(cloud)
                if (instance_type is None or e.instance_type == instance_type) and (region is None or e.region == region)]
        return sorted(rows, key=lambda e: (e.instance_type, e.region))

    def commitment_rates(self, cloud: Cloud, region: str, instance_type: str) -> list[CommitmentRate]:
        """The published commitment rates of (region, type): exact region only, no stand-in."""
        rates = self._commitments.get((cloud, region, instance_type), [])
        return sorted(rates, key=lambda c: (c.instrument.value, c.term_years))

    def with_live_commitments(self, cloud: Cloud, region: str, instance_types: Iterable[str],
                              live: Iterable[CommitmentRate]) -> list[CommitmentRate]:
        """The shipped rates of ``instance_types``, each replaced by a ``live`` one of the same type, instrument
        and term (live rates the catalog lacks are added), sorted by type, instrument and term."""
        merged = {(c.instance_type, c.instrument, c.term_years): c
                  for t in sorted(set(instance_types)) for c in self.commitment_rates(cloud, region, t)}
        merged.update({(c.instance_type, c.instrument, c.term_years): c for c in live})
        return [merged[k] for k in sorted(merged, key=lambda k: (k[0], k[1].value, k[2]))]

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
                           _midnight(entry.spot_as_of or entry.on_demand_as_of), interruption=entry.spot_interruption)
            )
        return out


@cache
def _load_shipped(cloud: Cloud) -> PriceCatalog:
    name = f"{cloud.value}_gpu_catalog.csv"
    text = _data_text(name)
    entries = parse_catalog(text, cloud, name) if text is not None else []
    return PriceCatalog(entries, [c for c in _shipped_commitments() if c.cloud == cloud])


@cache
def _shipped_commitments() -> tuple[CommitmentRate, ...]:
    text = _data_text(COMMITMENTS_FILE)
    return tuple(parse_commitments(text, COMMITMENTS_FILE)) if text is not None else ()


def _data_text(name: str) -> str | None:
    ref = resources.files("providers") / "data" / name
    return ref.read_text(encoding="utf-8") if ref.is_file() else None


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


def parse_commitments(text: str, source_name: str) -> list[CommitmentRate]:
    """Rows of ``commitment_rates.csv``; any malformed row raises ``CatalogError`` naming file:line."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COMMITMENT_COLUMNS:
        raise CatalogError(f"{source_name}:1: header must be {','.join(COMMITMENT_COLUMNS)}")
    rates: list[CommitmentRate] = []
    seen: set[tuple[Cloud, str, str, Instrument, int]] = set()
    for lineno, row in enumerate(reader, start=2):
        try:
            rate = _commitment(row)
        except (KeyError, ValueError, InvalidOperation, TypeError, AttributeError) as exc:
            raise CatalogError(f"{source_name}:{lineno}: bad commitment row ({exc})") from exc
        key = (rate.cloud, rate.region, rate.instance_type, rate.instrument, rate.term_years)
        if key in seen:
            raise CatalogError(f"{source_name}:{lineno}: duplicate commitment row {key}")
        seen.add(key)
        rates.append(rate)
    return rates


def _commitment(row: dict[str, str]) -> CommitmentRate:
    if None in row or any(row[c] is None for c in COMMITMENT_COLUMNS):
        raise ValueError(f"expected {len(COMMITMENT_COLUMNS)} fields")
    cloud, instrument = Cloud(row["cloud"].strip()), Instrument(row["instrument"].strip())
    if INSTRUMENT_CLOUD[instrument] != cloud:
        raise ValueError(f"instrument {instrument.value} is not sold on {cloud.value}")
    term = int(row["term_years"])
    if term not in COMMITMENT_TERMS:
        raise ValueError(f"term {term} is not 1 or 3 years")
    hourly = Decimal(row["hourly_usd"])
    if not hourly.is_finite() or hourly <= 0:
        raise ValueError(f"non-positive rate {hourly}")
    region, itype, source = row["region"].strip(), row["instance_type"].strip(), row["source"].strip()
    if not (region and itype and source):
        raise ValueError("region, instance_type and source must be set")
    return CommitmentRate(cloud, region, itype, instrument, term, hourly, source,
                          _midnight(date.fromisoformat(row["as_of"].strip())))
