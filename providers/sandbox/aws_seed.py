"""Seed a simulated fleet into an AWS endpoint (a moto server) through the public APIs, with boto3.

Instances are launched with their tags (spot ones through ``InstanceMarketOptions``), stopped
ones stopped, and telemetry published the way the real publishers do it:

- ``CWAgent`` ``nvidia_smi_utilization_gpu`` / ``nvidia_smi_memory_used`` / ``nvidia_smi_memory_total``
  per GPU with dimensions ``InstanceId``, ``index``, ``name`` (the GPU model) and ``host``
  (the private DNS name), as the CloudWatch agent's ``nvidia_gpu`` plugin does;
- ``AWS/EC2`` ``CPUUtilization`` (percent) and ``NetworkIn``/``NetworkOut`` (bytes in a
  5-minute basic-monitoring period) per ``InstanceId``.

A real agent publishes every minute; seeding 14 days of that into moto is slow, so the sandbox
publishes one sample every ``cadence`` (the demo: hourly), which the idle model handles as a
sparse publisher.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from providers.catalog import PriceCatalog
from providers.model import Cloud
from providers.sandbox.fleet import SIM_PERIOD, Series, SimInstance, grid, simulate

DEMO_AMI = "ami-12c6146b"  # one of moto's built-in images
PUT_BATCH = 1000  # PutMetricData accepts up to 1,000 metrics a call
BASIC_PERIOD_S = 300


@dataclass(frozen=True)
class Seeded:
    ids: dict[str, str]  # sim name -> instance id
    datapoints: int


def seed_fleet(session: Any, fleet: Sequence[SimInstance], end: pd.Timestamp, lookback: timedelta,
               cadence: timedelta = timedelta(hours=1), endpoint_url: str | None = None) -> Seeded:
    times = grid(end, lookback, SIM_PERIOD)
    every = max(1, int(cadence / SIM_PERIOD))
    ids: dict[str, str] = {}
    points = 0
    for region in sorted({i.region for i in fleet}):
        ec2 = session.client("ec2", region_name=region, endpoint_url=endpoint_url)
        cw = session.client("cloudwatch", region_name=region, endpoint_url=endpoint_url)
        for inst in (i for i in fleet if i.region == region):
            described = _launch(ec2, inst)
            ids[inst.name] = described["InstanceId"]
            data = list(_datums(inst, described, times, every))
            for namespace in ("CWAgent", "AWS/EC2"):
                chunk = [d for ns, d in data if ns == namespace]
                for start in range(0, len(chunk), PUT_BATCH):
                    cw.put_metric_data(Namespace=namespace, MetricData=chunk[start : start + PUT_BATCH])
            points += len(data)
    return Seeded(ids, points)


def _launch(ec2: Any, inst: SimInstance) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "ImageId": DEMO_AMI,
        "InstanceType": inst.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in inst.tags.items()]}],
    }
    if inst.spot:
        kwargs["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}}
    described = ec2.run_instances(**kwargs)["Instances"][0]
    if not inst.running:
        ec2.stop_instances(InstanceIds=[described["InstanceId"]])
    return described


def _datums(inst: SimInstance, described: dict[str, Any], times: pd.DatetimeIndex, every: int) -> Iterable[tuple[str, dict[str, Any]]]:
    iid = described["InstanceId"]
    host = described.get("PrivateDnsName") or iid
    yield from series_datums(iid, host, simulate(inst, times), inst.instance_type, inst.gpus if inst.publishes_gpu else 0,
                             inst.gpu_memory_mib, every)


def series_datums(iid: str, host: str, series: Series, instance_type: str, gpus: int, gpu_memory_mib: float,
                  every: int) -> Iterable[tuple[str, dict[str, Any]]]:
    """(namespace, datum) pairs for one instance's simulated series, as the real publishers shape them:
    one sample every ``every`` periods while present, anchored at the newest; ``gpus=0``: no GPU agent."""
    picks = np.flatnonzero(series.present)[::-1][::every][::-1]  # anchored at the newest sample
    instance_dims = [{"Name": "InstanceId", "Value": iid}]
    name = gpu_name(instance_type)
    for k in picks:
        ts = series.times[k].to_pydatetime()
        yield "AWS/EC2", datum("CPUUtilization", instance_dims, ts, series.cpu[k], "Percent")
        yield "AWS/EC2", datum("NetworkIn", instance_dims, ts, series.net_in[k] * BASIC_PERIOD_S, "Bytes")
        yield "AWS/EC2", datum("NetworkOut", instance_dims, ts, series.net_out[k] * BASIC_PERIOD_S, "Bytes")
        for gpu in range(gpus):
            dims = instance_dims + [
                {"Name": "index", "Value": str(gpu)},
                {"Name": "name", "Value": name},
                {"Name": "host", "Value": host},
            ]
            yield "CWAgent", datum("nvidia_smi_utilization_gpu", dims, ts, series.gpu_util[gpu, k], "Percent")
            yield "CWAgent", datum("nvidia_smi_memory_used", dims, ts, series.gpu_mem_used[gpu, k], "Megabytes")
            if ts.hour == 0 or k == picks[0]:  # constant: once a day is enough for the daily query
                yield "CWAgent", datum("nvidia_smi_memory_total", dims, ts, gpu_memory_mib, "Megabytes")


def datum(name: str, dims: list[dict[str, str]], ts: Any, value: float, unit: str) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": dims, "Timestamp": ts, "Value": round(float(value), 3), "Unit": unit}


_GPU_NAMES = {"p4d": "NVIDIA A100-SXM4-40GB", "p5": "NVIDIA H100 80GB HBM3", "g5": "NVIDIA A10G", "g6": "NVIDIA L4",
              "g6e": "NVIDIA L40S", "g4dn": "Tesla T4", "p3": "Tesla V100-SXM2-16GB"}


def gpu_name(instance_type: str) -> str:
    """The GPU's name as nvidia-smi reports it on ``instance_type`` (the agent's ``name`` dimension)."""
    return _GPU_NAMES.get(instance_type.split(".")[0], "NVIDIA GPU")


def seed_costs(endpoint_url: str, fleet: Sequence[SimInstance], end: pd.Timestamp, lookback: timedelta,
               group_members: Sequence[tuple[str, str]] = ()) -> None:
    """Queue a Cost Explorer answer for the window (moto replays queued results) from catalog prices.

    ``group_members``: (instance type, region) of each scaling-group member, running the whole window."""
    catalog = PriceCatalog.shipped(Cloud.AWS)
    days = pd.date_range(pd.Timestamp(end).floor("D") - pd.Timedelta(lookback), pd.Timestamp(end).floor("D") + pd.Timedelta(days=1), freq="D")
    times = grid(end, lookback, SIM_PERIOD)
    dollars_per_day: dict[tuple[str, str], np.ndarray] = {}
    for inst in fleet:
        present = simulate(inst, times).present
        per_day = pd.Series(present.astype(float) * SIM_PERIOD.total_seconds() / 3600, index=times).resample("D").sum()
        key = (inst.instance_type, inst.region)
        quotes = {q.pricing_model.value: q.hourly_usd for q in catalog.quotes(Cloud.AWS, inst.region, inst.instance_type)}
        price = quotes.get("spot" if inst.spot else "on-demand", Decimal(0))
        dollars = per_day.reindex(days[:-1], fill_value=0.0).to_numpy() * float(price)
        dollars_per_day[key] = dollars_per_day.get(key, 0) + dollars
    for itype, region in group_members:
        price = next((q.hourly_usd for q in catalog.quotes(Cloud.AWS, region, itype) if q.pricing_model.value == "on-demand"),
                     Decimal(0))
        hours = pd.Series(SIM_PERIOD.total_seconds() / 3600, index=times).resample("D").sum()
        dollars = hours.reindex(days[:-1], fill_value=0.0).to_numpy() * float(price)
        dollars_per_day[(itype, region)] = dollars_per_day.get((itype, region), 0) + dollars
    results = []
    for i, day in enumerate(days[:-1]):
        groups = [
            {"Keys": [itype, region], "Metrics": {"UnblendedCost": {"Amount": f"{amounts[i]:.4f}", "Unit": "USD"}}}
            for (itype, region), amounts in sorted(dollars_per_day.items()) if amounts[i] > 0
        ]
        results.append({"TimePeriod": {"Start": day.date().isoformat(), "End": days[i + 1].date().isoformat()},
                        "Total": {}, "Groups": groups, "Estimated": False})
    body = json.dumps({"results": [{"ResultsByTime": results, "DimensionValueAttributes": []}]}).encode()
    req = urllib.request.Request(f"{endpoint_url}/moto-api/static/ce/cost-and-usage-results", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - local moto server only
        resp.read()
