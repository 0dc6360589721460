"""The ground floor: plain typed records shared by every layer.

Conventions (see docs/architecture.md):
- money is ``Decimal`` (floats only inside vectorized math), rates are hourly, a month is 730 hours;
- every time is timezone-aware UTC; windows are half-open ``[start, end)``;
- usage is columnar: one long pandas frame for the whole fleet, never one object per sample.

This module imports only the standard library, numpy and pandas.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

HOURS_PER_MONTH = Decimal(730)


class Cloud(enum.StrEnum):
    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"


class ResourceState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"  # compute no longer billed (AWS stopped, GCP TERMINATED, Azure deallocated)
    #: Azure "Stopped" power state: the OS is shut down but the VM keeps its hardware and bills compute in full.
    STOPPED_ALLOCATED = "stopped-allocated"
    OTHER = "other"


class PricingModel(enum.StrEnum):
    ON_DEMAND = "on-demand"
    SPOT = "spot"
    COMMITTED = "committed"


class Metric(enum.StrEnum):
    """Usage metrics in canonical units, whatever the cloud calls them."""

    GPU_UTIL = "gpu_util_pct"  # percent of time a kernel ran, per GPU
    GPU_MEM_USED = "gpu_mem_used_mib"  # per GPU
    GPU_MEM_TOTAL = "gpu_mem_total_mib"  # per GPU
    CPU_UTIL = "cpu_util_pct"  # whole instance
    NET_IN = "net_in_bytes_per_s"  # whole instance
    NET_OUT = "net_out_bytes_per_s"  # whole instance
    GPU_POWER = "gpu_power_w"  # per GPU, where the agent publishes power draw


#: ``gpu`` column value for instance-level metrics (CPU, network) and for a
#: GPU series the agent only publishes aggregated over all GPUs.
INSTANCE_LEVEL = -1


def utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime; naive values are refused."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} (costagent only uses UTC-aware times)")
    return value.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class ResourceRef:
    cloud: Cloud
    account: str
    region: str
    id: str

    @property
    def key(self) -> str:
        """One string naming the resource across clouds (used as the usage frame's key)."""
        return f"{self.cloud}/{self.account}/{self.region}/{self.id}"


@dataclass(frozen=True, slots=True)
class Accelerators:
    model: str  # e.g. "A100", "H100", "A10G", "L4"
    count: int
    memory_gib: float  # per accelerator
    manufacturer: str = "NVIDIA"

    @property
    def total_memory_gib(self) -> float:
        return self.memory_gib * self.count


@dataclass(frozen=True, slots=True)
class InstanceTypeSpec:
    instance_type: str
    vcpu: int
    memory_gib: float
    accelerators: Accelerators | None


@dataclass(frozen=True)
class Resource:
    ref: ResourceRef
    instance_type: str
    state: ResourceState
    pricing_model: PricingModel
    accelerators: Accelerators | None
    tags: Mapping[str, str] = field(default_factory=dict)
    launched_at: datetime | None = None
    zone: str | None = None
    vcpu: int | None = None
    memory_gib: float | None = None
    group: str | None = None  # autoscaling group / managed instance group / scale set
    #: The cloud's immutable id where ``ref.id`` is a name: the numeric GCP instance id (what Cloud
    #: Monitoring's ``instance_id`` label and billing's global name carry), the Azure ``vmId``.
    native_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))
        if self.launched_at is not None:
            object.__setattr__(self, "launched_at", utc(self.launched_at))

    @property
    def name(self) -> str | None:
        """The ``Name`` tag (AWS's convention), else the VM's own name where the cloud has one (GCP, Azure)."""
        named = self.tags.get("Name") or self.tags.get("name")
        if named or self.ref.cloud == Cloud.AWS:
            return named
        return self.ref.id.rstrip("/").rsplit("/", 1)[-1]

    @property
    def has_gpu(self) -> bool:
        return self.accelerators is not None and self.accelerators.count > 0


@dataclass(frozen=True, slots=True)
class ScheduledCapacity:
    """A recurring capacity change of a group (an ASG scheduled action, a MIG scaling schedule)."""

    name: str
    recurrence: str  # five-field cron expression, evaluated in ``time_zone``
    min_size: int | None = None
    max_size: int | None = None
    desired: int | None = None
    time_zone: str = "UTC"


@dataclass(frozen=True)
class Group:
    """A scaling group: an AWS Auto Scaling group, a GCP managed instance group, an Azure scale set."""

    ref: ResourceRef  # ``id`` is the group's name
    kind: str  # "aws-asg" | "gcp-mig" | "azure-vmss"
    instance_type: str | None  # the type new members launch with (None: mixed or unknown)
    min_size: int
    max_size: int
    desired: int
    members: tuple[str, ...] = ()  # ``ResourceRef.id`` of the current members
    #: Seconds from launch until a new member serves (warm-up / health-check grace); None: not declared.
    warmup_seconds: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    scheduled: tuple[ScheduledCapacity, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))

    def member_keys(self) -> list[str]:
        r = self.ref
        return [ResourceRef(r.cloud, r.account, r.region, m).key for m in self.members]


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))
        if self.end <= self.start:
            raise ValueError(f"empty window: {self.start.isoformat()} >= {self.end.isoformat()}")

    @classmethod
    def ending(cls, end: datetime, length: timedelta, align: timedelta | None = None) -> Window:
        """The window of ``length`` ending at ``end``; with ``align``, both ends fall on its multiples."""
        end = utc(end)
        if align is not None:
            step = int(align.total_seconds())
            end = datetime.fromtimestamp(int(end.timestamp()) // step * step, tz=timezone.utc)
            length = align * (length // align)
        return cls(end - length, end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def hours(self) -> float:
        return self.duration.total_seconds() / 3600


@dataclass(frozen=True, slots=True)
class PriceQuote:
    cloud: Cloud
    region: str
    instance_type: str
    pricing_model: PricingModel
    hourly_usd: Decimal
    source: str  # e.g. "catalog", "aws-pricing-api", "spot-price-history"
    as_of: datetime
    #: Spot only: the interruption band as published (AWS Spot Advisor "10-15%", ...); None: not known.
    interruption: str | None = None

    @property
    def monthly_usd(self) -> Decimal:
        return self.hourly_usd * HOURS_PER_MONTH


class Instrument(enum.StrEnum):
    """Commitment instruments: what a buyer signs, with the scope each one covers."""

    AWS_COMPUTE_SP = "aws-compute-savings-plan"  # any family, any region, $/h commitment
    AWS_EC2_INSTANCE_SP = "aws-ec2-instance-savings-plan"  # one family in one region, $/h commitment
    AWS_RI = "aws-reserved-instance"  # standard regional RI: one family in one region (size-flexible, Linux)
    GCP_CUD = "gcp-committed-use-discount"  # resource-based: GPUs (+ cores, RAM) of one series in one region
    AZURE_RESERVATION = "azure-reservation"  # one VM size (flexibility group) in one region
    AZURE_SAVINGS_PLAN = "azure-savings-plan"  # any VM, any region, $/h commitment


@dataclass(frozen=True, slots=True)
class CommitmentRate:
    """The effective hourly price of one instance type under a commitment (no upfront / monthly payment)."""

    cloud: Cloud
    region: str
    instance_type: str
    instrument: Instrument
    term_years: int  # 1 or 3
    hourly_usd: Decimal
    source: str
    as_of: datetime


@dataclass(frozen=True, slots=True)
class CostRecord:
    """A billing row, named after the FOCUS columns it carries."""

    cloud: Cloud
    account: str  # FOCUS SubAccountId
    region: str | None  # RegionId
    service: str  # ServiceName
    sku: str | None  # instance type or SKU id
    charge_period_start: datetime
    charge_period_end: datetime
    billed_cost: Decimal
    currency: str = "USD"
    resource_id: str | None = None
    pricing_category: str | None = None  # Standard / Dynamic / Committed


@dataclass(frozen=True, slots=True)
class BadRow:
    """A billing row that could not be read: counted, reported with its place, never silently dropped."""

    file: str
    line: int  # 1-based line in the file (CSV; the header is line 1) or row number (Parquet)
    reason: str


@dataclass(frozen=True, slots=True)
class CostTotal:
    """Billing totals for one (provider, service, charge category, pricing category) in FOCUS terms."""

    provider: str  # FOCUS ProviderName
    service: str | None  # ServiceName
    charge_category: str  # Usage | Purchase | Tax | Credit | Adjustment
    pricing_category: str | None  # Standard | Dynamic | Committed | None
    billed_cost: Decimal
    effective_cost: Decimal
    list_cost: Decimal | None
    rows: int


@dataclass(frozen=True, slots=True)
class ResourceBilling:
    """What billing says one resource cost over the billing window (usage rows only)."""

    provider: str
    resource_id: str  # as billed (instance id, ARN or Azure resource id; matching strips to the last segment)
    region: str | None
    instance_type: str | None
    usage_hours: float
    committed_hours: float  # hours covered by a commitment discount (RI, savings plan, CUD, reservation)
    billed_cost: Decimal
    effective_cost: Decimal  # amortized: commitment purchases spread over the hours they cover
    list_cost: Decimal | None
    commitment_ids: tuple[str, ...] = ()

    @property
    def effective_hourly(self) -> Decimal | None:
        if self.usage_hours <= 0:
            return None
        return self.effective_cost / Decimal(str(round(self.usage_hours, 6)))

    @property
    def covered_fraction(self) -> float:
        return min(1.0, self.committed_hours / self.usage_hours) if self.usage_hours > 0 else 0.0


@dataclass(frozen=True, slots=True)
class CommitmentUse:
    """One commitment (FOCUS CommitmentDiscountId) over the billing window."""

    commitment_id: str
    provider: str
    commitment_type: str | None  # FOCUS CommitmentDiscountType / Category: "Reserved Instance", "Savings Plan", ...
    used_cost: Decimal  # commitment cost that covered usage (CommitmentDiscountStatus Used)
    unused_cost: Decimal  # commitment cost paid for nothing (Unused)

    @property
    def utilization(self) -> float | None:
        total = self.used_cost + self.unused_cost
        return float(self.used_cost / total) if total > 0 else None


#: Columns of ``BillingData.hourly``: instance-hours per (provider, region, type, hour).
BILLING_HOURLY_COLUMNS = ("provider", "region", "instance_type", "ts", "hours", "committed_hours", "effective_cost")


@dataclass(frozen=True)
class BillingData:
    """What billing exports (FOCUS, or native exports mapped onto FOCUS) said, aggregated.

    ``hourly`` has ``BILLING_HOURLY_COLUMNS`` (``ts`` UTC hour starts; empty when the exports are
    daily or coarser); money in it is float (vectorized math), money elsewhere Decimal.
    """

    sources: tuple[str, ...]
    rows: int  # rows read, bad ones included
    bad_rows: int
    bad_examples: tuple[BadRow, ...]  # the first few, with file and line
    totals: tuple[CostTotal, ...]
    resources: tuple[ResourceBilling, ...]
    commitments: tuple[CommitmentUse, ...]
    hourly: pd.DataFrame
    currency: str = "USD"
    window: Window | None = None  # the charge periods seen (min start, max end)

    def for_resource(self, resource_id: str) -> ResourceBilling | None:
        """The billing of one resource, matched on the id's last path segment (ARNs, Azure ids)."""
        want = _last_segment(resource_id)
        return next((r for r in self.resources if _last_segment(r.resource_id) == want), None)


def _last_segment(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].lower()


@dataclass(frozen=True, slots=True)
class Gap:
    """Something that could not be read, and why; the report lists every gap."""

    cloud: Cloud
    what: str  # inventory | usage | gpu-telemetry | costs | prices | analysis
    reason: str
    region: str | None = None
    resource_id: str | None = None
    account: str | None = None
    hint: str | None = None  # how to fix it


@dataclass(frozen=True, slots=True)
class Action:
    """A change a recommendation proposes; applied only through the guarded actuators."""

    kind: str  # stop | schedule | rightsize | ...
    ref: ResourceRef
    params: Mapping[str, Any] = field(default_factory=dict)


USAGE_COLUMNS = ("resource", "gpu", "metric", "ts", "value")


def usage_frame(
    resource: Iterable[str] | np.ndarray | pd.Categorical,
    gpu: Iterable[int] | np.ndarray,
    metric: Iterable[str] | np.ndarray | pd.Categorical,
    ts: Iterable[Any] | np.ndarray | pd.DatetimeIndex,
    value: Iterable[float] | np.ndarray,
) -> pd.DataFrame:
    """Build the canonical long usage frame from column arrays.

    ``resource`` and ``metric`` may be given as ``pd.Categorical`` (built from codes) to skip
    turning millions of strings into categories.
    """
    metrics = [m.value for m in Metric]
    if isinstance(metric, pd.Categorical):
        metric_col = metric.set_categories(metrics)
    else:
        metric_col = pd.Categorical(np.asarray(metric, dtype=object), categories=metrics)
    return pd.DataFrame(
        {
            "resource": resource if isinstance(resource, pd.Categorical) else pd.Categorical(np.asarray(resource, dtype=object)),
            "gpu": np.asarray(gpu, dtype=np.int16),
            "metric": metric_col,
            "ts": pd.DatetimeIndex(pd.to_datetime(ts, utc=True)).as_unit("ns"),
            "value": np.asarray(value, dtype=np.float64),
        },
        columns=list(USAGE_COLUMNS),
    )


def empty_usage_frame() -> pd.DataFrame:
    return usage_frame([], [], [], [], [])


@dataclass(frozen=True)
class Usage:
    """The fleet's usage in one long frame (columns ``USAGE_COLUMNS``).

    ``value`` is in the metric's canonical unit, each row aggregating the interval starting at
    ``ts``: one ``period`` for utilization, CPU and network (the maximum for GPU utilization, the
    mean for CPU, the mean rate for network); memory rows may be coarser (the provider reads the
    peak of memory used per hour and memory total per day).
    """

    frame: pd.DataFrame
    period: timedelta

    @classmethod
    def empty(cls, period: timedelta) -> Usage:
        return cls(empty_usage_frame(), period)

    @classmethod
    def concat(cls, parts: Iterable[Usage], period: timedelta) -> Usage:
        frames = [p.frame for p in parts if len(p.frame)]
        if not frames:
            return cls.empty(period)
        resources = pd.api.types.union_categoricals([f["resource"] for f in frames]).categories
        fixed = [f.assign(resource=f["resource"].cat.set_categories(resources)) for f in frames]
        return cls(pd.concat(fixed, ignore_index=True), period)


@dataclass(frozen=True)
class Snapshot:
    """Everything one collection saw: the input of every recommender."""

    as_of: datetime
    window: Window
    resources: tuple[Resource, ...]
    usage: Usage
    prices: Mapping[tuple[str, str, str, PricingModel], PriceQuote] = field(default_factory=dict)
    costs: tuple[CostRecord, ...] = ()
    gaps: tuple[Gap, ...] = ()
    groups: tuple[Group, ...] = ()
    #: (cloud, region) -> GPU instance types offered there (and priced in ``prices``): right-sizing targets.
    offerings: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    #: (cloud, instance type) -> its shape, for every type in the fleet and in ``offerings``.
    specs: Mapping[tuple[str, str], InstanceTypeSpec] = field(default_factory=dict)
    #: Commitment prices for the fleet's types (and their family), from the catalog.
    commitment_rates: tuple[CommitmentRate, ...] = ()
    #: Billing exports read for this run (``--billing``); None when none were given.
    billing: BillingData | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "as_of", utc(self.as_of))

    def spec_for(self, cloud: Cloud | str, instance_type: str) -> InstanceTypeSpec | None:
        return self.specs.get((str(cloud), instance_type))

    def quote(self, cloud: Cloud | str, region: str, instance_type: str,
              model: PricingModel = PricingModel.ON_DEMAND) -> PriceQuote | None:
        return self.prices.get((str(cloud), region, instance_type, model))

    def price_for(self, resource: Resource) -> PriceQuote | None:
        """The hourly price this resource pays.

        When billing shows the resource covered by a commitment, its effective (amortized,
        after-discount) rate from billing; else the list price of its own pricing model, on-demand
        as the fallback.
        """
        covered = self.effective_quote(resource)
        if covered is not None:
            return covered
        cloud, region, itype = resource.ref.cloud.value, resource.ref.region, resource.instance_type
        own = self.prices.get((cloud, region, itype, resource.pricing_model))
        return own or self.prices.get((cloud, region, itype, PricingModel.ON_DEMAND))

    def effective_quote(self, resource: Resource) -> PriceQuote | None:
        """The billed effective hourly rate of a resource billing shows covered by a commitment; else None."""
        billed = self.billing.for_resource(resource.ref.id) if self.billing is not None else None
        if billed is None or billed.committed_hours <= 0 or billed.effective_hourly is None:
            return None
        ids = ", ".join(billed.commitment_ids) or "a commitment"
        source = (f"billing: effective cost {billed.effective_cost:.2f} over {billed.usage_hours:g} h, "
                  f"{billed.covered_fraction:.0%} covered by {ids}")
        as_of = self.billing.window.end if self.billing is not None and self.billing.window else self.as_of
        return PriceQuote(resource.ref.cloud, resource.ref.region, resource.instance_type, PricingModel.COMMITTED,
                          billed.effective_hourly.quantize(Decimal("0.0001")), source, as_of)


def price_key(quote: PriceQuote) -> tuple[str, str, str, PricingModel]:
    return (quote.cloud.value, quote.region, quote.instance_type, quote.pricing_model)
