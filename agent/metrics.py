"""The daemon's Prometheus metrics (``prometheus_client``), in a registry of its own (tests run several).

Counters count since the process started (Prometheus handles restarts with ``rate``/``increase``); the
gauges hold what the latest collect found.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("costagent_runs", "Job runs by job and outcome (ok, failed, skipped).",
                            ["job", "status"], registry=r)
        self.duration = Histogram("costagent_run_duration_seconds", "How long each job run took.", ["job"],
                                  buckets=_DURATION_BUCKETS, registry=r)
        self.last_success = Gauge("costagent_last_success_timestamp_seconds",
                                  "Unix time of each job's latest successful run.", ["job"], registry=r)
        self.recommendations = Gauge("costagent_recommendations", "Recommendations of the latest collect, by kind.",
                                     ["kind"], registry=r)
        self.savings = Gauge("costagent_savings_found_usd_per_month",
                             "Monthly savings the latest collect found, by kind (overlapping findings each count).",
                             ["kind"], registry=r)
        self.savings_total = Gauge("costagent_savings_found_total_usd_per_month",
                                   "Monthly savings the latest collect found, each resource counted once.",
                                   registry=r)
        self.actions = Counter("costagent_actions", "Apply decisions by action kind and status "
                                                    "(done, failed, refused, dry-run, marked, skipped).",
                               ["kind", "status"], registry=r)
        self.api_errors = Counter("costagent_api_errors", "Cloud reads that failed (each a gap in the report).",
                                  ["cloud"], registry=r)
        self.deliveries = Counter("costagent_digest_deliveries", "Digest deliveries by channel and outcome "
                                                                 "(sent, failed, duplicate, empty).",
                                  ["channel", "status"], registry=r)
        for job in ("collect", "apply", "digest", "housekeeping"):
            for status in ("ok", "failed", "skipped"):
                self.runs.labels(job, status)

    def found(self, by_kind_count: Mapping[str, int], by_kind_usd: Mapping[str, Decimal], total: Decimal) -> None:
        """Set the gauges of the latest collect (kinds not found this time drop to 0)."""
        for kind in set(self._labels(self.recommendations)) - set(by_kind_count):
            self.recommendations.labels(kind).set(0)
            self.savings.labels(kind).set(0)
        for kind, n in by_kind_count.items():
            self.recommendations.labels(kind).set(n)
            self.savings.labels(kind).set(float(by_kind_usd.get(kind, Decimal(0))))
        self.savings_total.set(float(total))

    @staticmethod
    def _labels(gauge: Gauge) -> list[str]:
        return [s.labels["kind"] for m in gauge.collect() for s in m.samples]


__all__ = ["Metrics"]
