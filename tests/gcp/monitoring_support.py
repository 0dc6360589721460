"""A small GCE fleet seeded into the Cloud Monitoring emulator, with the values each test expects.

Samples every 5 minutes at hh:02:30, hh:07:30, ... (never on a period boundary), for 48 hours ending
at ``NOW``; sample ``j`` of hour ``k`` carries the formulas below, so hourly maxima, means and rates
are known in closed form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from providers.gcp.client import GcpClients
from providers.model import Accelerators, Cloud, PricingModel, Resource, ResourceRef, ResourceState, Window
from providers.sandbox.gcp_monitoring import GcpMonitoringEmulator, add_dcgm_gpu, add_gce_host, add_ops_agent_gpu

PROJECT = "proj-a"
REGION = "us-central1"
NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
N_HOURS = 48
WINDOW = Window(NOW - N_HOURS * HOUR, NOW)
PER_HOUR = 12
A100_MIB = 40960.0
L4_MIB = 23034.0

K = np.repeat(np.arange(N_HOURS), PER_HOUR)  # hour of each sample
J = np.tile(np.arange(PER_HOUR), N_HOURS)  # sample within its hour
TIMES = pd.DatetimeIndex(WINDOW.start + pd.to_timedelta(K * 3600 + J * 300 + 150, unit="s"))


def util(k: np.ndarray | int, gpu: int, j: np.ndarray | int) -> np.ndarray | float:
    """Percent; the hour's maximum is at j = 11 and is ``util_max``."""
    return (7 * np.asarray(k) + 13 * gpu) % 50 + 0.5 + 3 * np.asarray(j)


def util_max(k: int, gpu: int) -> float:
    return float(util(k, gpu, PER_HOUR - 1))


def mem_used(k: np.ndarray | int, gpu: int, j: np.ndarray | int) -> np.ndarray:
    """MiB; the hour's maximum is at j = 11."""
    return 1000.0 + 10 * np.asarray(k) + np.asarray(j) + gpu


def cpu(k: np.ndarray | int, j: np.ndarray | int) -> np.ndarray:
    """Percent; the hour's mean is ``k % 40 + 0.55``."""
    return np.asarray(k) % 40 + 0.1 * np.asarray(j)


def rx(k: np.ndarray | int) -> np.ndarray:
    """Bytes per second, constant within an hour."""
    return 1000.0 * (np.asarray(k) + 1)


def gce(name: str, native_id: str | None, zone: str, gpus: int, model: str = "A100", *,
        state: ResourceState = ResourceState.RUNNING, region: str = REGION, itype: str = "a2-highgpu-4g") -> Resource:
    return Resource(ResourceRef(Cloud.GCP, PROJECT, region, name), itype, state, PricingModel.ON_DEMAND,
                    Accelerators(model, gpus, 40.0) if gpus else None, zone=zone, native_id=native_id)


def seed_ops(emu: GcpMonitoringEmulator, instance_id: str, zone: str, gpus: range, total: float = A100_MIB,
             name: str | None = None) -> None:
    for g in gpus:
        add_ops_agent_gpu(emu, PROJECT, zone, instance_id, g, TIMES, util(K, g, J), mem_used(K, g, J), total,
                          instance_name=name)


def seed_dcgm(emu: GcpMonitoringEmulator, instance_id: str, zone: str, gpus: range) -> None:
    for g in gpus:
        add_dcgm_gpu(emu, PROJECT, zone, instance_id, g, TIMES, util(K, g, J), mem_used(K, g, J), A100_MIB)


def seed_host(emu: GcpMonitoringEmulator, instance_id: str, zone: str, name: str | None = None) -> None:
    add_gce_host(emu, PROJECT, zone, instance_id, TIMES, cpu(K, J), rx(K), 2 * rx(K), instance_name=name)


def clients(emu: GcpMonitoringEmulator, **kwargs: float) -> GcpClients:
    options = {"retry_initial": 0.01, "retry_timeout": 2.0, **kwargs}
    return GcpClients(projects=[PROJECT], endpoints={"monitoring": emu.address}, **options)


def rows(frame: pd.DataFrame, key: str, metric: str, gpu: int) -> pd.DataFrame:
    sel = frame[(frame["resource"] == key) & (frame["metric"] == metric) & (frame["gpu"] == gpu)]
    return sel.sort_values("ts")
