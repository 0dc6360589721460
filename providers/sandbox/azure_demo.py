"""The embedded demo's Azure cloud: a simulated fleet of N-series VMs in the local Resource Manager emulator.

``costagent audit --demo`` opens it through ``azure_demo_cloud(now, lookback)`` and runs the normal Azure
provider against it: the real management clients over HTTPS to one ``AzureArmEmulator`` (a throwaway
CA, ``ca_path``) carrying two extensions:

- ``AzureMonitorExtension``: what Telegraf's ``nvidia_smi`` input with its ``azure_monitor`` output
  publishes for a VM that runs it (custom namespace ``Telegraf/nvidia_smi``: ``utilization_gpu``,
  ``memory_used``, ``memory_total``, ``power_draw`` per GPU ``index``) and the platform metrics Azure
  publishes for every running VM (``Percentage CPU``, ``Network In Total`` / ``Network Out Total`` as
  bytes per sample), a sample every 5 minutes from ``fleet.simulate``; it also serves the batch metrics
  API's ``metrics:getBatch`` (the data plane's route), so ``AzureDemo.metrics_endpoint`` is the same URL;
- ``AzureCostsExtension``: Cost Management's daily ``Virtual Machines`` lines per VM, priced from the
  shipped catalog (``providers/data/azure_gpu_catalog.csv``): running hours on demand or at the Spot
  price, and a powered-off but still allocated VM billed every hour (Azure bills compute until the VM is
  deallocated); a deallocated VM costs nothing.

The fleet is ``SimInstance`` records like the AWS demo's (``expect`` is the verdict a correct audit
reaches; ``instance_type`` is the VM size, ``region`` the location). Where each VM lives and its power
state come from an ``AzurePlacement``: ``DEMO_PLACEMENTS`` for the demo fleet, else the demo subscription,
a resource group named after the ``team`` tag, and running (or deallocated for a ``STOPPED`` behaviour).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from azure.core.credentials import AccessToken

from providers.catalog import PriceCatalog
from providers.model import Cloud, PricingModel
from providers.sandbox.azure_arm import AzureArmEmulator
from providers.sandbox.azure_costs import AzureCostsExtension
from providers.sandbox.azure_monitor import AzureMonitorExtension
from providers.sandbox.fleet import (
    BURSTY,
    FORGOTTEN,
    INFERENCE,
    NO_AGENT,
    OFFICE,
    SIM_PERIOD,
    STOPPED,
    TRAINING,
    SimInstance,
    grid,
    simulate,
)

DEMO_SUBSCRIPTION = "8c5e2f1a-3b4d-4e6f-9a7b-1c2d3e4f5a6b"
DEMO_SUBSCRIPTION_NAME = "ML Platform (demo)"
#: nvidia-smi's name for the GPU of each size family (Telegraf's ``name`` dimension), with (idle, full) watts.
GPU_MODELS: tuple[tuple[str, str, float, float], ...] = (
    (r"_h100_", "NVIDIA H100 NVL", 60.0, 400.0),
    (r"_a100_", "NVIDIA A100 80GB PCIe", 45.0, 300.0),
    (r"_a10_", "NVIDIA A10-24Q", 20.0, 150.0),
    (r"_t4_", "Tesla T4", 10.0, 70.0),
    (r"_v100|s_v3$", "Tesla V100-PCIE-16GB", 25.0, 250.0),
)


class DemoCredential:
    """A credential handing out one fixed bearer token (the emulator checks that one is sent, not its value);
    the expiry is on the real clock, which is what azure-core compares it with."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("costagent-demo-token", int(time.time()) + 3600)


@dataclass(frozen=True)
class AzurePlacement:
    """Where a simulated VM lives on Azure, and its power state (``running``, ``stopped``: powered off but
    still allocated and billed, ``deallocated``)."""

    subscription: str
    resource_group: str
    power_state: str = "running"


@dataclass(frozen=True)
class AzureDemo:
    """The running Azure demo cloud: what ``AzureClients`` needs, and the emulator behind it."""

    subscriptions: tuple[str, ...]
    credential: DemoCredential
    base_url: str
    ca_path: str
    regions: tuple[str, ...]
    fleet: tuple[SimInstance, ...]
    arm: AzureArmEmulator
    monitor: AzureMonitorExtension | None = None
    costs: AzureCostsExtension | None = None

    @property
    def metrics_endpoint(self) -> str:
        """Azure Monitor's metrics data plane (``metrics:getBatch``): the same emulator, which serves that
        route too (``AzureClients(metrics_endpoint=...)``)."""
        return self.base_url

    def vm_id(self, name: str) -> str:
        """The ARM id of a demo VM by name."""
        vm = next(v for v in self.arm.vms() if v["name"] == name)
        return str(vm["id"])


def _a(name: str, location: str, size: str, gpus: int, mem_mib: float, behaviour: str, team: str,
       power_state: str | None = None, **kw: Any) -> tuple[SimInstance, AzurePlacement]:
    tags = {"team": team, "owner": f"{team}@contoso.example", "costcenter": "cc-4100" if team == "llm" else "cc-4200",
            **kw.pop("tags", {})}
    inst = SimInstance(name, location, size, gpus, mem_mib, behaviour, tags=tags, **kw)
    return inst, AzurePlacement(DEMO_SUBSCRIPTION, f"rg-{team}-gpu", power_state or _default_power(inst))


def _default_power(inst: SimInstance) -> str:
    return "running" if inst.running else "deallocated"


A100_MIB, T4_MIB, A10_MIB, H100_MIB = 81920.0, 15360.0, 24576.0, 95830.0

_DEMO = (
    _a("llm-sft-a100", "eastus", "Standard_NC24ads_A100_v4", 1, A100_MIB, FORGOTTEN, "llm", idle_days=5,
       expect="stop"),
    _a("notebook-erin", "eastus", "Standard_NC4as_T4_v3", 1, T4_MIB, OFFICE, "research", expect="schedule"),
    _a("vision-api-a10", "westus2", "Standard_NV36ads_A10_v5", 1, A10_MIB, INFERENCE, "vision"),
    # Shut down from inside the guest three weeks ago: no telemetry, but still allocated and billed.
    _a("vision-t4-poweredoff", "westus2", "Standard_NC8as_T4_v3", 1, T4_MIB, STOPPED, "vision",
       power_state="stopped", expect="stop"),
    _a("eval-a100x2-parked", "eastus", "Standard_NC48ads_A100_v4", 2, A100_MIB, STOPPED, "research"),
    _a("render-t4-legacy", "eastus", "Standard_NC16as_T4_v3", 1, T4_MIB, NO_AGENT, "vision", expect_gap=True),
    _a("batch-t4-spot", "westus2", "Standard_NC8as_T4_v3", 1, T4_MIB, BURSTY, "llm", spot=True),
    _a("llm-h100-train", "eastus", "Standard_NC40ads_H100_v5", 1, H100_MIB, TRAINING, "llm"),
)
#: Subscription, resource group and power state of each demo VM, by name.
DEMO_PLACEMENTS: dict[str, AzurePlacement] = {inst.name: where for inst, where in _DEMO}


def azure_demo_fleet() -> list[SimInstance]:
    """The demo's Azure fleet: 8 N-series VMs in one subscription over two locations."""
    return [inst for inst, _ in _DEMO]


def placement(inst: SimInstance, placements: Mapping[str, AzurePlacement] | None = None) -> AzurePlacement:
    """``placements`` (default ``DEMO_PLACEMENTS``) by name, else the demo subscription, ``rg-<team>-gpu``
    and running (deallocated for a ``STOPPED`` behaviour)."""
    found = (placements if placements is not None else DEMO_PLACEMENTS).get(inst.name)
    if found is not None:
        return found
    return AzurePlacement(DEMO_SUBSCRIPTION, f"rg-{inst.tags.get('team', 'platform')}-gpu", _default_power(inst))


def gpu_model(size: str) -> tuple[str, float, float]:
    """(nvidia-smi name, idle watts, full watts) of a size's GPU."""
    low = size.lower()
    return next(((name, idle, full) for pattern, name, idle, full in GPU_MODELS if re.search(pattern, low)),
                ("NVIDIA GPU", 30.0, 250.0))


def meter_subcategory(size: str) -> str:
    """Cost Management's meter sub-category of a size: ``Standard_NC24ads_A100_v4`` -> ``NCadsA100v4 Series``."""
    m = re.fullmatch(r"Standard_([A-Z]+)\d+([a-z]*)(?:_([A-Za-z0-9]+))?_(v\d+)", size)
    return f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{m.group(4)} Series" if m else f"{size} Series"


def seed_vm(arm: AzureArmEmulator, monitor: AzureMonitorExtension, inst: SimInstance, where: AzurePlacement,
            times: pd.DatetimeIndex) -> str:
    """One simulated VM: the VM in Resource Manager and, while it runs, its platform metrics and (when
    ``inst.publishes_gpu``) its Telegraf GPU metrics. Returns its ARM id."""
    body = arm.add_vm(where.subscription, where.resource_group, inst.name, inst.instance_type, inst.region,
                      power_state=where.power_state, tags=inst.tags, priority="Spot" if inst.spot else "Regular",
                      created=times[0].to_pydatetime() - timedelta(days=21))
    rid = str(body["id"])
    monitor.add_resource(rid, inst.region)
    sim = simulate(inst, times)
    running = sim.present & (where.power_state == "running")
    if not running.any():
        return rid
    at = times[running].to_pydatetime()
    step = SIM_PERIOD.total_seconds()
    monitor.add_series(rid, "Percentage CPU", (at, np.round(sim.cpu[running], 2)), unit="Percent", location=inst.region)
    monitor.add_series(rid, "Network In Total", (at, np.rint(sim.net_in[running] * step)), unit="Bytes")
    monitor.add_series(rid, "Network Out Total", (at, np.rint(sim.net_out[running] * step)), unit="Bytes")
    if inst.publishes_gpu:
        model, idle_w, full_w = gpu_model(inst.instance_type)
        for gpu in range(inst.gpus):
            util = np.round(sim.gpu_util[gpu, running], 1)
            fields = {"utilization_gpu": util, "memory_used": np.rint(sim.gpu_mem_used[gpu, running]),
                      "memory_total": np.full(len(at), inst.gpu_memory_mib),
                      "power_draw": np.round(idle_w + (full_w - idle_w) * util / 100.0, 1)}
            for field_name, values in fields.items():
                monitor.add_gpu_series(rid, gpu, field_name, (at, values), model=model, host=inst.name)
    return rid


def seed_costs(costs: AzureCostsExtension, inst: SimInstance, where: AzurePlacement, rid: str,
               times: pd.DatetimeIndex, catalog: PriceCatalog) -> None:
    """Daily Cost Management lines of one VM: hours allocated x the catalog's hourly price (Spot at the Spot
    price); a powered-off (``stopped``) VM is allocated all the time, a deallocated one never."""
    if where.power_state == "deallocated":
        return
    allocated = np.ones(len(times), bool) if where.power_state == "stopped" else simulate(inst, times).present
    model = PricingModel.SPOT if inst.spot else PricingModel.ON_DEMAND
    price = next((q.hourly_usd for q in catalog.quotes(Cloud.AZURE, inst.region, inst.instance_type)
                  if q.pricing_model == model), None)
    if price is None:
        return
    hours = pd.Series(allocated.astype(float) * SIM_PERIOD.total_seconds() / 3600, index=times).resample("D").sum()
    short = inst.instance_type.removeprefix("Standard_").replace("_", " ")
    for day, h in hours[hours > 0].items():
        costs.add_usage(where.subscription, day.date(), rid, "Virtual Machines", round(float(price) * h, 4),
                        location=inst.region, pricing_model="Spot" if inst.spot else "OnDemand",
                        meter_subcategory=meter_subcategory(inst.instance_type),
                        meter=f"{short} Spot" if inst.spot else short)


@contextmanager
def azure_demo_cloud(now: datetime, lookback: timedelta = timedelta(days=14),
                     fleet: Sequence[SimInstance] | None = None, *,
                     placements: Mapping[str, AzurePlacement] | None = None) -> Iterator[AzureDemo]:
    """The demo fleet (or ``fleet``, placed by ``placements`` or ``placement``'s defaults) in a fresh ARM
    emulator for the duration of the block, telemetry and costs over ``lookback`` up to ``now``."""
    fleet = tuple(fleet if fleet is not None else azure_demo_fleet())
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    times = grid(pd.Timestamp(now), lookback, SIM_PERIOD)
    catalog = PriceCatalog.shipped(Cloud.AZURE)
    monitor, costs = AzureMonitorExtension(), AzureCostsExtension(page_size=50)
    # Pages of 20: the VM list still pages past 20 VMs, and the Resource SKUs list (a few dozen sizes per
    # location) takes two pages rather than the default size's seventeen.
    with AzureArmEmulator(extensions=[monitor, costs], page_size=20) as arm:
        subscriptions = {placement(i, placements).subscription for i in fleet} | {DEMO_SUBSCRIPTION}
        for sub in sorted(subscriptions):
            arm.add_subscription(sub, display_name=DEMO_SUBSCRIPTION_NAME if sub == DEMO_SUBSCRIPTION else None)
            costs.add_subscription(sub)
        for inst in fleet:
            where = placement(inst, placements)
            rid = seed_vm(arm, monitor, inst, where, times)
            seed_costs(costs, inst, where, rid, times, catalog)
        yield AzureDemo(tuple(sorted(subscriptions)), DemoCredential(), arm.url, str(arm.ca_path),
                        tuple(sorted({i.region for i in fleet})), fleet, arm, monitor, costs)
