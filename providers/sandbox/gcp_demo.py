"""The embedded demo's GCP cloud: a simulated Compute Engine fleet in local emulators.

``costagent audit --demo`` opens it through ``gcp_demo_cloud(now, lookback)`` and runs the normal GCP
provider against it: the real google SDK clients over HTTP (Compute Engine, Resource Manager, BigQuery)
and gRPC (Cloud Monitoring) to

- ``GcpComputeEmulator``: the projects and their VMs with labels, machine types, attached GPUs (N1),
  Spot scheduling and TERMINATED (stopped) VMs;
- ``GcpMonitoringEmulator``: what a VM with the Ops Agent publishes (``agent.googleapis.com/gpu/*`` per
  GPU, a sample every 5 minutes, off the period boundaries as a real agent's samples are) and what Compute
  Engine publishes for every running VM (CPU utilization, network bytes), from ``fleet.simulate``;
- ``GcpBigQueryEmulator``: a detailed Cloud Billing export table (``resource.name`` per VM), hourly rows
  of GPU, core and RAM SKUs priced from the shipped catalog (``providers/data/gcp_gpu_catalog.csv``).

The fleet is ``SimInstance`` records like the AWS demo's (``expect`` is the verdict a correct audit
reaches); where each one lives (project, zone) is a ``Placement``: ``DEMO_PLACEMENTS`` for the demo
fleet, else the first demo project and the first zone of the instance's region that offers its machine
type. ``instance_type`` is the shipped catalog's name: the machine type, or for N1 VMs with attached GPUs
``<machine>+<N>x<acceleratorType>``. Compute Engine labels allow lowercase letters, digits, ``-`` and
``_`` only: the fleet's tags are written that way.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from google.auth.credentials import AnonymousCredentials

from providers.catalog import PriceCatalog
from providers.model import Cloud, PricingModel
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
from providers.sandbox.gcp_bigquery import GcpBigQueryEmulator
from providers.sandbox.gcp_compute import GcpComputeEmulator
from providers.sandbox.gcp_monitoring import (
    GcpMonitoringEmulator,
    add_gce_host,
    add_ops_agent_gpu,
)

RESEARCH, PROD = "acme-ml-research", "acme-ml-prod"
DEMO_PROJECTS = (RESEARCH, PROD)
#: The detailed usage cost export (resource-level), in the billing admins' own project.
DEMO_BILLING_TABLE = "acme-billing-admin.billing_export.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9"
#: Zones the demo's Compute Engine knows (fewer zones: fewer empty scopes in every aggregated list).
DEMO_ZONES = ("us-central1-a", "us-central1-b", "us-central1-c", "us-east4-a", "us-east4-c", "europe-west4-a",
              "europe-west4-b")
#: How far a sample sits after its 5-minute grid point: agents sample at their own offsets, never exactly on
#: the hour, so each sample falls inside one aligned period.
SAMPLE_OFFSET = timedelta(seconds=150)
#: What nvidia-smi (and so the Ops Agent's ``model`` label) calls each accelerator type's GPU.
GPU_MODEL_NAMES = {"nvidia-tesla-a100": "NVIDIA A100-SXM4-40GB", "nvidia-a100-80gb": "NVIDIA A100-SXM4-80GB",
                   "nvidia-h100-80gb": "NVIDIA H100 80GB HBM3", "nvidia-l4": "NVIDIA L4", "nvidia-tesla-t4": "Tesla T4",
                   "nvidia-tesla-v100": "Tesla V100-SXM2-16GB"}
#: Billing SKU wording per machine series: (GPU, instance family as the core/RAM SKUs name it).
_SKU_NAMES = {"a2": ("Nvidia Tesla A100", "A2 Instance"), "a3": ("Nvidia H100 80GB", "A3 Instance"),
              "g2": ("Nvidia L4", "G2 Instance"), "n1": (None, "N1 Predefined Instance")}
_GEO = {"us": "Americas", "europe": "EMEA", "asia": "APAC"}
#: Share of the hourly price on the GPU and core SKUs (the rest is RAM), bundled machines (A2, A3, G2) and
#: N1 machines with attached GPUs.
_SHARES = {"bundled": (0.82, 0.12), "attached": (0.5, 0.35)}


@dataclass(frozen=True)
class Placement:
    """Where a simulated VM lives on GCP."""

    project: str
    zone: str


@dataclass(frozen=True)
class GcpDemo:
    """The running GCP demo cloud; ``endpoints`` go to ``GcpClients(endpoints=...)``."""

    projects: tuple[str, ...]
    endpoints: dict[str, str]
    billing_table: str | None
    regions: tuple[str, ...]
    fleet: tuple[SimInstance, ...]
    compute: GcpComputeEmulator
    monitoring: GcpMonitoringEmulator
    bigquery: GcpBigQueryEmulator | None
    #: What ``GcpClients(credentials=...)`` should get: with Application Default Credentials on the machine
    #: the SDKs would otherwise refresh (and send) a real token to reach the local emulators.
    credentials: Any = field(default_factory=AnonymousCredentials)


def _g(name: str, zone: str, project: str, itype: str, gpus: int, mem_mib: float, behaviour: str, team: str,
       **kw: Any) -> tuple[SimInstance, Placement]:
    labels = {"team": team, "owner": f"{team}-oncall", "env": "prod" if project == PROD else "research",
              **kw.pop("labels", {})}
    return SimInstance(name, zone.rsplit("-", 1)[0], itype, gpus, mem_mib, behaviour, tags=labels, **kw), \
        Placement(project, zone)


A100_MIB, L4_MIB, T4_MIB = 40960.0, 23034.0, 15360.0

_DEMO = (
    _g("llm-finetune-a100", "us-central1-a", PROD, "a2-highgpu-1g", 1, A100_MIB, FORGOTTEN, "llm", idle_days=6,
       expect="stop"),
    _g("notebook-dana", "us-central1-b", RESEARCH, "g2-standard-8", 1, L4_MIB, OFFICE, "research", expect="schedule"),
    _g("llm-pretrain-8xa100", "europe-west4-a", PROD, "a2-highgpu-8g", 8, A100_MIB, TRAINING, "llm"),
    _g("vision-serve-t4", "us-central1-c", PROD, "n1-standard-8+1xnvidia-tesla-t4", 1, T4_MIB, INFERENCE, "vision"),
    _g("batch-embed-l4", "us-east4-a", PROD, "g2-standard-4", 1, L4_MIB, BURSTY, "llm", spot=True),
    _g("render-legacy-t4", "europe-west4-b", RESEARCH, "n1-standard-4+1xnvidia-tesla-t4", 1, T4_MIB, NO_AGENT,
       "vision", expect_gap=True),
    _g("eval-a100-parked", "us-central1-a", RESEARCH, "a2-highgpu-2g", 2, A100_MIB, STOPPED, "research"),
    _g("vision-l4-sandbox", "europe-west4-b", RESEARCH, "g2-standard-4", 1, L4_MIB, FORGOTTEN, "vision",
       idle_days=3, expect="stop"),
)
#: Project and zone of each demo VM, by name.
DEMO_PLACEMENTS: dict[str, Placement] = {inst.name: where for inst, where in _DEMO}


def gcp_demo_fleet() -> list[SimInstance]:
    """The demo's Compute Engine fleet: 8 VMs in two projects over three regions, each a case a user meets."""
    return [inst for inst, _ in _DEMO]


def split_type(instance_type: str) -> tuple[str, list[tuple[str, int]] | None]:
    """``n1-standard-8+1xnvidia-tesla-t4`` -> (``n1-standard-8``, [(``nvidia-tesla-t4``, 1)]); a bundled
    type (``a2-highgpu-1g``) -> (its name, None: the machine type brings its GPUs)."""
    machine, _, attached = instance_type.partition("+")
    if not attached:
        return machine, None
    m = re.fullmatch(r"(\d+)x(.+)", attached)
    if m is None:
        raise ValueError(f"not <machine>+<N>x<accelerator>: {instance_type!r}")
    return machine, [(m.group(2), int(m.group(1)))]


def placement(inst: SimInstance, compute: GcpComputeEmulator,
              placements: Mapping[str, Placement] | None = None) -> Placement:
    """``placements`` (default ``DEMO_PLACEMENTS``) by name, else the first demo project and the first
    zone of the instance's region where its machine type (N1: its GPU) is offered."""
    found = (placements if placements is not None else DEMO_PLACEMENTS).get(inst.name)
    if found is not None:
        return found
    machine, attached = split_type(inst.instance_type)
    zones = [z for z in compute.zones if z.rsplit("-", 1)[0] == inst.region]
    offered = [z for z in zones if (z, machine) in compute.machine_types
               and all((z, a) in compute.accelerator_types for a, _ in attached or [])]
    if not (offered or zones):
        raise ValueError(f"{inst.name}: no demo zone in {inst.region}")
    return Placement(DEMO_PROJECTS[0], (offered or zones)[0])


def _accelerator(compute: GcpComputeEmulator, zone: str, instance_type: str) -> str | None:
    machine, attached = split_type(instance_type)
    if attached:
        return attached[0][0]
    body = compute.machine_types.get((zone, machine), {})
    return next((a["guestAcceleratorType"] for a in body.get("accelerators", [])), None)


def seed_vm(compute: GcpComputeEmulator, monitoring: GcpMonitoringEmulator, inst: SimInstance, where: Placement,
            times: pd.DatetimeIndex) -> dict[str, Any]:
    """One simulated VM: the instance in Compute Engine and, while it runs, its Compute Engine metrics and
    (when ``inst.publishes_gpu``) its Ops Agent GPU metrics. Returns the stored instance."""
    machine, attached = split_type(inst.instance_type)
    body = compute.add_instance(where.project, where.zone, inst.name, machine, labels=inst.tags, accelerators=attached,
                                spot=inst.spot, status="RUNNING" if inst.running else "TERMINATED",
                                created=times[0].to_pydatetime() - timedelta(days=21))
    sim = simulate(inst, times)
    if not sim.present.any():
        return body
    at = (times[sim.present] + SAMPLE_OFFSET).to_pydatetime()
    iid = body["id"]
    add_gce_host(monitoring, where.project, where.zone, iid, at, sim.cpu[sim.present], sim.net_in[sim.present],
                 sim.net_out[sim.present], instance_name=inst.name)
    if inst.publishes_gpu:
        model = GPU_MODEL_NAMES.get(_accelerator(compute, where.zone, inst.instance_type) or "", "NVIDIA GPU")
        for gpu in range(inst.gpus):
            add_ops_agent_gpu(monitoring, where.project, where.zone, iid, gpu, at,
                              np.round(sim.gpu_util[gpu, sim.present], 1), sim.gpu_mem_used[gpu, sim.present],
                              inst.gpu_memory_mib, model=model, instance_name=inst.name)
    return body


def billing_rows(inst: SimInstance, where: Placement, body: Mapping[str, Any], times: pd.DatetimeIndex,
                 catalog: PriceCatalog, accelerator: str | None, project_number: str) -> list[dict[str, Any]]:
    """The detailed export's hourly Compute Engine rows of one VM while it ran: its GPU SKU and its core and
    RAM SKUs (those carry the ``machine_spec`` system label), priced from the shipped catalog.
    ``accelerator``: the VM's GPU type (names an attached GPU's SKU)."""
    sim = simulate(inst, times)
    hours = pd.Series(sim.present.astype(float) * SIM_PERIOD.total_seconds() / 3600, index=times).resample("h").sum()
    hours = hours[hours > 0]
    model = PricingModel.SPOT if inst.spot else PricingModel.ON_DEMAND
    price = next((q.hourly_usd for q in catalog.quotes(Cloud.GCP, inst.region, inst.instance_type)
                  if q.pricing_model == model), None)
    spec = catalog.spec(Cloud.GCP, inst.instance_type)
    if hours.empty or price is None or spec is None:
        return []
    machine, attached = split_type(inst.instance_type)
    gpu_name, family = _SKU_NAMES.get(machine.split("-")[0], (None, machine.split("-")[0].upper() + " Instance"))
    if gpu_name is None:  # attached: the accelerator type names the GPU SKU ("nvidia-tesla-t4" -> "Nvidia Tesla T4")
        gpu_name = " ".join(w.upper() if len(w) <= 4 and any(c.isdigit() for c in w) else w.capitalize()
                            for w in (accelerator or "nvidia-gpu").split("-"))
    geo = _GEO.get(inst.region.split("-")[0], "Americas")
    spot = "Spot Preemptible " if inst.spot else ""
    gpu_sku = f"{gpu_name} GPU attached to Spot Preemptible VMs" if inst.spot else f"{gpu_name} GPU"
    gpu_share, core_share = _SHARES["attached" if attached else "bundled"]
    gpus = spec.accelerators.count if spec.accelerators else inst.gpus
    common = {"service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
              "project": {"id": where.project, "number": project_number, "name": where.project},
              "location": {"location": where.zone, "country": "US" if geo == "Americas" else "NL",
                           "region": inst.region, "zone": where.zone},
              "labels": dict(inst.tags),
              "resource": {"name": inst.name, "global_name": f"//compute.googleapis.com/projects/{where.project}/zones/"
                                                             f"{where.zone}/instances/{body['id']}"}}
    skus = [  # (SKU description, share of the price, usage seconds per hour, machine_spec)
        (f"{gpu_sku} running in {geo}", gpu_share, gpus * 3600.0, None),
        (f"{spot}{family} Core running in {geo}", core_share, spec.vcpu * 3600.0, machine),
        (f"{spot}{family} Ram running in {geo}", 1 - gpu_share - core_share, spec.memory_gib * 3600.0, machine),
    ]
    rows = []
    for at, ran in hours.items():
        start = at.to_pydatetime()
        for description, share, seconds, spec_label in skus:
            rows.append({**common, "sku": {"id": _sku_id(description), "description": description},
                         "usage_start_time": start, "usage_end_time": start + timedelta(hours=1),
                         "cost": round(float(price) * share * ran, 6),
                         "usage": {"amount": seconds * ran, "unit": "seconds", "amount_in_pricing_units": ran,
                                   "pricing_unit": "hour"},
                         "system_labels": {"compute.googleapis.com/machine_spec": spec_label} if spec_label else {}})
    return rows


def _sku_id(description: str) -> str:
    """A stable SKU id in the catalog's ``XXXX-XXXX-XXXX`` shape."""
    h = f"{zlib.crc32(description.encode()):08X}{zlib.crc32(description[::-1].encode()):08X}"
    return f"{h[0:4]}-{h[4:8]}-{h[8:12]}"


@contextmanager
def gcp_demo_cloud(now: datetime, lookback: timedelta = timedelta(days=14), fleet: Sequence[SimInstance] | None = None,
                   *, placements: Mapping[str, Placement] | None = None,
                   billing: bool = True) -> Iterator[GcpDemo]:
    """The demo fleet (or ``fleet``, placed by ``placements`` or ``placement``'s defaults) in fresh emulators
    for the duration of the block: telemetry over ``lookback`` up to ``now``; ``billing``: the BigQuery
    export too (``billing_table`` None without it)."""
    fleet = tuple(fleet if fleet is not None else gcp_demo_fleet())
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    times = grid(pd.Timestamp(now), lookback, SIM_PERIOD)
    catalog = PriceCatalog.shipped(Cloud.GCP)
    with ExitStack() as stack:
        compute = stack.enter_context(GcpComputeEmulator(zones=DEMO_ZONES, now=lambda: now))
        monitoring = stack.enter_context(GcpMonitoringEmulator())
        bigquery = stack.enter_context(GcpBigQueryEmulator(page_size=200)) if billing else None
        for project in DEMO_PROJECTS:
            compute.add_project(project, display_name=project.replace("-", " ").title())
        rows: list[dict[str, Any]] = []
        for inst in fleet:
            where = placement(inst, compute, placements)
            body = seed_vm(compute, monitoring, inst, where, times)
            accelerator = _accelerator(compute, where.zone, inst.instance_type)
            number = compute.projects[where.project]["name"].rsplit("/", 1)[-1]
            rows += billing_rows(inst, where, body, times, catalog, accelerator, number)
        table = None
        if bigquery is not None:
            bigquery.add_billing_table(*DEMO_BILLING_TABLE.split("."), rows, detailed=True)
            table = DEMO_BILLING_TABLE
        endpoints = {"compute": compute.url, "cloudresourcemanager": compute.url, "monitoring": monitoring.address}
        if bigquery is not None:
            endpoints["bigquery"] = bigquery.url
        projects = tuple(sorted(compute.projects))
        regions = tuple(sorted({i.region for i in fleet}))
        yield GcpDemo(projects, endpoints, table, regions, fleet, compute, monitoring, bigquery)
