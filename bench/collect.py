"""GCP and Azure collection against the local emulators: wall time and API calls as the fleet grows.

    .venv/bin/python bench/collect.py [--instances 50 200] [--days 14] [--period 5m] [--cloud gcp azure]

For each size, a simulated fleet (a mix of the demo's behaviours, one GPU each, two regions) is seeded
into the cloud's emulators exactly as the demo seeds its own (``gcp_demo_cloud`` / ``azure_demo_cloud``
with ``fleet=``; GCP without its billing table), then one read-only audit runs through the normal
provider and SDKs (``agent.audit.run_audit``). Printed per run: seconds to seed, seconds to audit, the
number of API requests by operation, and the verdict counts.

What it shows: Cloud Monitoring is read with a fixed number of region-wide calls whatever the fleet
size; Azure Monitor GPU custom metrics cost calls per VM (the batch API does not serve custom metrics),
the platform CPU/network metrics go through the batch API where the provider uses it. The emulators
answer in-process on loopback, so times are the SDKs' and the analysis's, not a cloud's latency.
Figures go to docs/benchmarks.md ("Collection against the emulators").
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from agent.audit import AuditRequest, Target, run_audit
from agent.clock import FixedClock
from agent.progress import QuietProgress
from providers.sandbox.fleet import BURSTY, FORGOTTEN, INFERENCE, NO_AGENT, OFFICE, TRAINING, SimInstance

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # gRPC core's info lines (GOAWAY at emulator stop) off stderr

MIX = (FORGOTTEN, OFFICE, TRAINING, INFERENCE, BURSTY, NO_AGENT)
TYPES = {"gcp": ("g2-standard-8", 24.0, ("us-central1", "europe-west4")),
         "azure": ("Standard_NC4as_T4_v3", 16.0, ("eastus", "westus2"))}


def fleet(cloud: str, n: int) -> list[SimInstance]:
    itype, mem_gib, regions = TYPES[cloud]
    out = []
    for i in range(n):
        behaviour = MIX[i % len(MIX)]
        out.append(SimInstance(f"bench-{cloud}-{i:04d}", regions[i % 2], itype, 1, mem_gib * 1024, behaviour,
                               idle_days=3.0 if behaviour == FORGOTTEN else 0.0, tags={"team": f"t{i % 5}"}))
    return out


def run(cloud: str, n: int, days: int, period: timedelta, now: datetime) -> dict[str, object]:
    lookback = timedelta(days=days)
    started = time.perf_counter()
    if cloud == "gcp":
        from providers.gcp import GcpProvider
        from providers.gcp.client import GcpClients
        from providers.sandbox.gcp_demo import gcp_demo_cloud

        opened = gcp_demo_cloud(now, lookback, fleet(cloud, n), billing=False)
        demo = opened.__enter__()
        provider = GcpProvider(GcpClients(projects=demo.projects, endpoints=demo.endpoints,
                                          credentials=demo.credentials), live_prices=False)
    else:
        from providers.azure import AzureProvider
        from providers.azure.client import AzureClients
        from providers.sandbox.azure_demo import azure_demo_cloud

        opened = azure_demo_cloud(now, lookback, fleet(cloud, n))
        demo = opened.__enter__()
        provider = AzureProvider(AzureClients(subscriptions=demo.subscriptions, credential=demo.credential,
                                              base_url=demo.base_url, ca_bundle=demo.ca_path, polling_interval=0,
                                              metrics_endpoint=demo.metrics_endpoint), live_prices=False)
    seeded = time.perf_counter() - started
    try:
        began = time.perf_counter()
        outcome = run_audit([Target(provider, tuple(demo.regions))],
                            AuditRequest(regions=tuple(demo.regions), lookback=lookback, period=period),
                            FixedClock(now), QuietProgress())
        audit_s = time.perf_counter() - began
    finally:
        opened.__exit__(None, None, None)
    calls = outcome.report.api_calls
    return {"cloud": cloud, "instances": n, "days": days, "period_minutes": period.total_seconds() / 60,
            "seed_seconds": round(seeded, 2), "audit_seconds": round(audit_s, 2),
            "api_requests": sum(calls.values()), "by_operation": dict(sorted(calls.items())),
            "verdicts": dict(Counter(r.kind.value for r in outcome.report.recommendations)),
            "gaps": len(outcome.report.gaps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--period", default="5m", help="5m or 1h")
    parser.add_argument("--cloud", nargs="+", default=["gcp", "azure"], choices=["gcp", "azure"])
    args = parser.parse_args()
    period = timedelta(minutes=5) if args.period == "5m" else timedelta(hours=1)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for cloud in args.cloud:
        for n in args.instances:
            print(json.dumps(run(cloud, n, args.days, period, now)), flush=True)


if __name__ == "__main__":
    main()
