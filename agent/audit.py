"""One read-only audit: collect -> analyze -> report. Nothing here can change a cloud resource."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from agent.clock import Clock
from agent.collect import BillingReader, Collected, collect_cloud, merge, read_billing_exports
from agent.progress import Progress
from providers.base import Provider
from providers.catalog import PriceCatalog
from providers.errors import ProviderError
from providers.model import BillingData, Gap, Snapshot, Window
from recommenders import Analysis, Settings, analyze, host_metrics_wanted
from recommenders.commitments import billing_commitment_summary
from reports.model import AuditReport, Summary

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1  # unexpected failure (a bug): the traceback is logged
EXIT_USAGE = 2  # bad flags or configuration
EXIT_INCOMPLETE = 3  # something asked for could not be read; the report lists it as a gap


@dataclass(frozen=True)
class AuditRequest:
    regions: tuple[str, ...]
    lookback: timedelta = timedelta(days=14)
    period: timedelta = timedelta(minutes=5)
    settings: Settings = field(default_factory=Settings)
    demo: bool = False
    #: Billing exports to read (FOCUS, AWS CUR 1.0/2.0, Azure EA/MCA; local paths, globs, ``s3://``).
    billing: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditOutcome:
    report: AuditReport
    analysis: Analysis
    snapshot: Snapshot
    failures: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_INCOMPLETE if self.failures else EXIT_OK


@dataclass(frozen=True)
class Target:
    """One cloud to audit and its regions."""

    provider: Provider
    regions: tuple[str, ...]
    #: Set when the cloud could not even be listed to find its regions: reported as a gap, the others go on.
    error: ProviderError | None = None


def run_audit(targets: Provider | Sequence[Target], request: AuditRequest, clock: Clock, progress: Progress,
              billing_reader: BillingReader | None = None) -> AuditOutcome:
    """Collect every target (one provider, or several clouds each with its regions), analyze them as one fleet."""
    if not isinstance(targets, Sequence):
        targets = [Target(targets, request.regions)]
    at = clock.now()
    window = Window.ending(at, request.lookback, align=request.period)
    log.info("event=audit_start clouds=%s regions=%s window_start=%s window_end=%s",
             ",".join(t.provider.cloud for t in targets), ",".join(r for t in targets for r in t.regions),
             window.start.isoformat(), window.end.isoformat())
    # CPU and network only veto idle and bound a right-size: read them only where they can matter.
    parts = [collect_cloud(t.provider, t.regions, window, request.period, at, progress,
                           host_metrics_for=lambda gpu_frame: host_metrics_wanted(gpu_frame, request.settings))
             for t in targets]
    collected = merge(parts, at, window, request.period)
    unreachable = [t for t in targets if t.error is not None]
    if unreachable:
        gaps = tuple(Gap(t.provider.cloud, "inventory", str(t.error).splitlines()[0], None, None, None, t.error.hint)
                     for t in unreachable)
        failures = tuple(f"{t.provider.cloud} inventory: {t.error.one_line()}" for t in unreachable)
        collected = Collected(replace(collected.snapshot, gaps=collected.snapshot.gaps + gaps),
                              collected.failures + failures, collected.api_calls)
    if request.billing and billing_reader is not None:
        billing, gaps, failures = read_billing_exports(request.billing, billing_reader, progress,
                                                       targets[0].provider.cloud)
        snapshot = replace(collected.snapshot, billing=billing, gaps=collected.snapshot.gaps + tuple(gaps))
        collected = Collected(snapshot, collected.failures + tuple(failures), collected.api_calls)
    regions = tuple(r for t in targets for r in t.regions)
    with progress.stage("analyze"):
        analysis = analyze(collected.snapshot, request.settings)
    report = AuditReport(
        generated_at=at,
        window=window,
        period_seconds=int(request.period.total_seconds()),
        clouds=tuple(dict.fromkeys(t.provider.cloud.value for t in targets)),
        regions=regions,
        summary=summarize(collected.snapshot, analysis, regions),
        recommendations=analysis.recommendations,
        gaps=collected.snapshot.gaps + analysis.gaps,
        api_calls=collected.api_calls,
        demo=request.demo,
    )
    log.info("event=audit_done recommendations=%d gaps=%d failures=%d", len(report.recommendations),
             len(report.gaps), len(collected.failures))
    return AuditOutcome(report, analysis, collected.snapshot, collected.failures)


def summarize(snapshot: Snapshot, analysis: Analysis, regions: Sequence[str]) -> Summary:
    per = analysis.idle.per_resource.loc[list(analysis.analyzed)]
    gpu_types = {r.instance_type for r in snapshot.resources if r.has_gpu}
    for cloud in {c.cloud for c in snapshot.costs}:
        gpu_types |= {e.instance_type for e in PriceCatalog.shipped(cloud).entries(cloud)}
    spend = [c.billed_cost for c in snapshot.costs if c.sku in gpu_types and (c.region in regions or c.region is None)]
    largest: dict[str, Decimal] = {}  # findings on one resource overlap: count each resource's largest
    by_kind: dict[str, Decimal] = {}
    for rec in analysis.recommendations:
        largest[rec.ref.key] = max(largest.get(rec.ref.key, Decimal(0)), rec.monthly_savings_usd)
        by_kind[rec.kind.value] = by_kind.get(rec.kind.value, Decimal(0)) + rec.monthly_savings_usd
    return Summary(
        instances=len(snapshot.resources),
        gpu_instances=sum(r.has_gpu for r in snapshot.resources),
        gpu_instances_running=sum(r.has_gpu and r.state.value == "running" for r in snapshot.resources),
        analyzed=len(analysis.analyzed),
        idle_gpu_hours=float(per["idle_gpu_hours"].sum()) if len(per) else 0.0,
        idle_usd=Decimal(str(round(float(per["idle_usd"].sum()), 2))) if len(per) else Decimal(0),
        monthly_savings_usd=sum(largest.values(), Decimal(0)),
        gpu_spend_usd=sum(spend, Decimal(0)).quantize(Decimal("0.01")) if snapshot.costs else None,
        savings_by_kind=by_kind,
        kpis=analysis.kpis,
        billing=billing_summary(snapshot.billing),
    )


def billing_summary(billing: BillingData | None) -> dict[str, Any] | None:
    """The report's billing block: what was read, its totals, and commitment coverage and utilization."""
    if billing is None:
        return None
    window = None if billing.window is None else {"start": billing.window.start.isoformat().replace("+00:00", "Z"),
                                                  "end": billing.window.end.isoformat().replace("+00:00", "Z")}
    return {
        "sources": list(billing.sources),
        "rows": billing.rows,
        "bad_rows": billing.bad_rows,
        "bad_examples": [{"file": b.file, "line": b.line, "reason": b.reason} for b in billing.bad_examples],
        "currency": billing.currency,
        "window": window,
        "billed_cost_usd": float(sum((t.billed_cost for t in billing.totals), Decimal(0))),
        "effective_cost_usd": float(sum((t.effective_cost for t in billing.totals), Decimal(0))),
        "commitments": billing_commitment_summary(billing),
    }
