"""CPU and network through Azure Monitor's batch metrics API (``metrics:getBatch``), and the per-VM fallback.

Real ``MetricsClient`` (azure-monitor-querymetrics) and azure-mgmt-monitor clients against the local
metrics emulator over HTTPS. Where a test needs the data plane to misbehave on its own, a second emulator
server shares the first one's data (``AzureMonitorEmulator(extension=...)``), as Azure's data plane is a
host of its own; the clients trust both CAs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from azure.core.exceptions import HttpResponseError

from agent.config import load
from providers.azure import metrics, permissions
from providers.azure.client import AzureClients
from providers.model import INSTANCE_LEVEL, Metric, Resource, Window
from providers.sandbox.azure_monitor import AzureMonitorEmulator
from tests.azure.monitor_support import HOUR, NOW, REGION, SUB, StaticCredential, hours, make_clients, vm

N_HOURS = 24
WINDOW = Window(NOW - N_HOURS * HOUR, NOW)
HALF = timedelta(minutes=30)
BATCH = "monitor.MetricsBatch.Query"
LIST = "monitor.Metrics.List"


def every_vm(keys: set[str]) -> Any:
    """``host_metrics_for``: the VMs named, whatever their GPUs said."""
    return lambda frame: keys


def cpu(i: int, k: int) -> float:
    return float((i + 3 * k) % 50) + 0.25


def seed_host(emu: AzureMonitorEmulator, name: str, i: int = 0) -> None:
    """Two samples an hour: CPU (mean cpu + 0.5), network totals (2 x per-sample bytes an hour)."""
    rid = vm(name).ref.id
    times = hours(WINDOW.start, N_HOURS)
    emu.add_series(rid, "Percentage CPU", [(t + j * HALF, cpu(i, k) + j) for k, t in enumerate(times) for j in (0, 1)])
    for metric, per_sample in (("Network In Total", 3e5), ("Network Out Total", 6e5)):
        emu.add_series(rid, metric, [(t + j * HALF, per_sample * (k + 1 + i)) for k, t in enumerate(times)
                                     for j in (0, 1)], unit="Bytes")


def seed_gpu(emu: AzureMonitorEmulator, name: str) -> None:
    for field in ("utilization_gpu", "memory_used", "memory_total", "power_draw"):
        emu.add_gpu_series(vm(name).ref.id, 0, field, [(t, 3.0) for t in hours(WINDOW.start, N_HOURS)])


def fleet(emu: AzureMonitorEmulator, n: int, prefix: str = "vm") -> list[Resource]:
    out = []
    for i in range(n):
        seed_host(emu, f"{prefix}{i}", i)
        out.append(vm(f"{prefix}{i}"))
    return out


def read(clients: AzureClients, resources: list[Resource], **kwargs: Any) -> Any:
    keys = {r.ref.key for r in resources}
    kwargs.setdefault("host_metrics_for", every_vm(keys))
    return metrics.usage(clients, SUB, REGION, resources, WINDOW, HOUR, **kwargs)


def host_rows(frame: pd.DataFrame, name: str, metric: Metric) -> list[float]:
    sel = frame[(frame["resource"] == vm(name).ref.key) & (frame["metric"] == metric.value)
                & (frame["gpu"] == INSTANCE_LEVEL)]
    return sel.sort_values("ts")["value"].tolist()


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["resource", "gpu", "metric", "ts"]).reset_index(drop=True)


@pytest.fixture
def emu() -> Iterator[AzureMonitorEmulator]:
    with AzureMonitorEmulator() as server:
        yield server


@pytest.fixture
def plane(emu: AzureMonitorEmulator, tmp_path: Path) -> Iterator[tuple[AzureMonitorEmulator, str]]:
    """A second server on the same data (the data plane), and a CA bundle trusting both."""
    with AzureMonitorEmulator(extension=emu.extension) as second:
        bundle = tmp_path / "cas.pem"
        bundle.write_text(Path(emu.ca_path).read_text() + Path(second.ca_path).read_text())
        yield second, str(bundle)


def split_clients(emu: AzureMonitorEmulator, plane: tuple[AzureMonitorEmulator, str], **kwargs: Any) -> AzureClients:
    second, bundle = plane
    return AzureClients(credential=StaticCredential(), base_url=emu.url, ca_bundle=bundle, polling_interval=0,
                        retry_backoff_factor=0.01, metrics_endpoint=second.url, **kwargs)


# -- the batch path ---------------------------------------------------------------------------------------------
def test_sixty_vms_cost_two_batch_calls_not_sixty(emu: AzureMonitorEmulator) -> None:
    clients = make_clients(emu, metrics_endpoint=emu.url)
    result = read(clients, fleet(emu, 60))
    assert clients.calls[BATCH] == 2 and LIST not in clients.calls
    assert [len(ids) for ids in emu.batch_requests] == [50, 10]
    frame = result.usage.frame
    assert all(len(host_rows(frame, f"vm{i}", Metric.CPU_UTIL)) == N_HOURS for i in range(60))


def test_batch_values_equal_the_per_vm_values(emu: AzureMonitorEmulator) -> None:
    resources = fleet(emu, 3)
    batched = read(make_clients(emu, metrics_endpoint=emu.url), resources).usage.frame
    per_vm_clients = make_clients(emu, metrics_endpoint="off")
    per_vm = read(per_vm_clients, resources).usage.frame
    assert per_vm_clients.calls[LIST] == 3 and BATCH not in per_vm_clients.calls
    pd.testing.assert_frame_equal(canonical(batched), canonical(per_vm))


def test_cpu_is_the_mean_and_network_totals_become_bytes_per_second(emu: AzureMonitorEmulator) -> None:
    frame = read(make_clients(emu, metrics_endpoint=emu.url), fleet(emu, 2)).usage.frame
    assert host_rows(frame, "vm1", Metric.CPU_UTIL) == [cpu(1, k) + 0.5 for k in range(N_HOURS)]
    assert host_rows(frame, "vm1", Metric.NET_IN) == pytest.approx([2 * 3e5 * (k + 2) / 3600 for k in range(N_HOURS)])
    assert host_rows(frame, "vm1", Metric.NET_OUT) == pytest.approx([2 * 6e5 * (k + 2) / 3600 for k in range(N_HOURS)])


def test_the_request_follows_the_reference(emu: AzureMonitorEmulator) -> None:
    read(make_clients(emu, metrics_endpoint=emu.url), fleet(emu, 1))
    [call] = [r for r in emu.requests if "getBatch" in r]
    assert call.startswith(f"POST /subscriptions/{SUB}/metrics:getBatch?")
    for part in ("metricnamespace=Microsoft.Compute%2FvirtualMachines", "interval=PT1H", "aggregation=average%2Ctotal",
                 "metricnames=Percentage%20CPU,Network%20In%20Total,Network%20Out%20Total", "starttime=", "endtime="):
        assert part in call


def test_gpu_custom_metrics_stay_per_vm(emu: AzureMonitorEmulator) -> None:
    seed_gpu(emu, "g")
    seed_host(emu, "g")
    clients = make_clients(emu, metrics_endpoint=emu.url)
    result = metrics.usage(clients, SUB, REGION, [vm("g")], WINDOW, HOUR)  # default: host metrics of measured VMs
    assert clients.calls == {"monitor.MetricNamespaces.List": 1, LIST: 1, BATCH: 1}
    assert emu.count("metricnamespace=Telegraf") == 1 and emu.count("GET") == 2  # the Telegraf read is the List
    assert len(host_rows(result.usage.frame, "g", Metric.CPU_UTIL)) == N_HOURS


def test_progress_advances_per_vm_of_each_batch(emu: AzureMonitorEmulator) -> None:
    for name in ("a", "b"):
        seed_gpu(emu, name)
        seed_host(emu, name)
    seen: list[tuple[int, int]] = []
    metrics.usage(make_clients(emu, metrics_endpoint=emu.url), SUB, REGION, [vm("a"), vm("b")], WINDOW, HOUR,
                  on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_long_windows_take_one_batch_call_per_30_days(emu: AzureMonitorEmulator) -> None:
    window = Window(NOW - timedelta(days=45), NOW)
    clients = make_clients(emu, metrics_endpoint=emu.url)
    emu.add_series(vm("long").ref.id, "Percentage CPU", [(t, 5.0) for t in hours(window.start, 45 * 24, timedelta(days=1) / 24)])
    frame = metrics.usage(clients, SUB, REGION, [vm("long")], window, HOUR,
                          host_metrics_for=every_vm({vm("long").ref.key})).usage.frame
    assert clients.calls[BATCH] == 2
    assert len(host_rows(frame, "long", Metric.CPU_UTIL)) == 45 * 24


def test_every_call_is_covered_by_the_read_only_role(emu: AzureMonitorEmulator) -> None:
    clients = make_clients(emu, metrics_endpoint=emu.url)
    read(clients, fleet(emu, 2))
    assert set(clients.calls) <= set(permissions.READ)


# -- never lose the data ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [401, 403, 404, 400])
def test_a_refusing_data_plane_falls_back_to_one_list_per_vm(emu: AzureMonitorEmulator, plane: Any, status: int,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    plane[0].fail_next(status)
    clients = split_clients(emu, plane)
    with caplog.at_level(logging.INFO, logger="providers.azure.metrics_batch"):
        result = read(clients, fleet(emu, 3))
    assert clients.calls[BATCH] == 1 and clients.calls[LIST] == 3
    assert all(len(host_rows(result.usage.frame, f"vm{i}", Metric.CPU_UTIL)) == N_HOURS for i in range(3))
    assert not [g for g in result.gaps if g.what == "usage"]
    [line] = [r for r in caplog.records if "metrics_batch_fallback" in r.getMessage()]
    assert "vms=3" in line.getMessage() and str(status) in line.getMessage()


def test_the_first_failure_stops_further_batch_calls(emu: AzureMonitorEmulator, plane: Any) -> None:
    plane[0].fail_next(403)
    clients = split_clients(emu, plane)
    result = read(clients, fleet(emu, 120))
    assert clients.calls[BATCH] == 1 and clients.calls[LIST] == 120
    assert plane[0].count("getBatch") == 1
    assert len(set(result.usage.frame["resource"])) == 120


def test_unreachable_data_plane_falls_back(emu: AzureMonitorEmulator) -> None:
    clients = make_clients(emu, metrics_endpoint="https://127.0.0.1:1", retry_total=1)
    result = read(clients, fleet(emu, 2))
    assert clients.calls[BATCH] == 1 and clients.calls[LIST] == 2
    assert len(host_rows(result.usage.frame, "vm0", Metric.CPU_UTIL)) == N_HOURS


def test_unknown_host_falls_back(emu: AzureMonitorEmulator) -> None:
    """DNS failure: a sovereign cloud or a network without the data plane (``.invalid`` never resolves)."""
    clients = make_clients(emu, metrics_endpoint="https://{region}.metrics.invalid", retry_total=1)
    result = read(clients, fleet(emu, 1))
    assert clients.calls[BATCH] == 1 and len(host_rows(result.usage.frame, "vm0", Metric.NET_OUT)) == N_HOURS


def test_throttling_past_the_retries_falls_back(emu: AzureMonitorEmulator, plane: Any) -> None:
    plane[0].fail_next(429, count=5)
    clients = split_clients(emu, plane, retry_total=1)
    result = read(clients, fleet(emu, 2))
    assert clients.calls[LIST] == 2 and len(host_rows(result.usage.frame, "vm1", Metric.CPU_UTIL)) == N_HOURS


def test_529_is_retried_on_the_data_plane(emu: AzureMonitorEmulator, plane: Any) -> None:
    """The migration guide: the metrics back end throttles with 529; azure-core retries it."""
    plane[0].fail_next(529)
    clients = split_clients(emu, plane)
    result = read(clients, fleet(emu, 2))
    assert clients.calls[BATCH] == 1 and LIST not in clients.calls and plane[0].count("getBatch") == 2
    assert len(host_rows(result.usage.frame, "vm1", Metric.CPU_UTIL)) == N_HOURS


def test_a_vm_answered_without_series_is_read_per_vm(emu: AzureMonitorEmulator) -> None:
    """The data plane does not check regions: a VM of another location comes back with empty ``timeseries``
    (the migration guide). Such a VM is read with Metrics - List; the others are not."""
    resources = fleet(emu, 2)
    seed_host(emu, "moved", 5)
    emu.add_resource(vm("moved").ref.id, location="westus2")
    clients = make_clients(emu, metrics_endpoint=emu.url + "/{region}")
    frame = read(clients, [*resources, vm("moved")]).usage.frame
    assert emu.count(f"POST /{REGION}/subscriptions/{SUB}/metrics:getBatch?") == 1
    assert clients.calls[BATCH] == 1 and clients.calls[LIST] == 1 and emu.count("/virtualMachines/moved/") == 2
    assert host_rows(frame, "moved", Metric.CPU_UTIL) == [cpu(5, k) + 0.5 for k in range(N_HOURS)]
    assert len(host_rows(frame, "vm1", Metric.CPU_UTIL)) == N_HOURS


# -- the client and the configuration -----------------------------------------------------------------------------
class RecordingCredential(StaticCredential):
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.scopes.extend(scopes)
        return super().get_token(*scopes, **kwargs)


def test_the_token_is_asked_for_the_data_plane_audience(emu: AzureMonitorEmulator) -> None:
    credential = RecordingCredential()
    clients = AzureClients(credential=credential, base_url=emu.url, ca_bundle=emu.ca_path, metrics_endpoint=emu.url)
    read(clients, fleet(emu, 1))
    assert "https://metrics.monitor.azure.com/.default" in credential.scopes


@pytest.mark.parametrize("base_url, configured, expected", [
    (None, None, "https://eastus.metrics.monitor.azure.com"),
    ("https://management.usgovcloudapi.net", None, "https://eastus.metrics.monitor.azure.us"),
    ("https://management.chinacloudapi.cn/", None, "https://eastus.metrics.monitor.azure.cn"),
    ("https://127.0.0.1:8443", None, None),  # an emulator or a proxy: not guessed
    ("https://127.0.0.1:8443", "https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
    (None, "https://{region}.metrics.example.test", "https://eastus.metrics.example.test"),
    (None, "off", None),
])
def test_the_data_plane_endpoint(base_url: str | None, configured: str | None, expected: str | None) -> None:
    clients = AzureClients(credential=StaticCredential(), base_url=base_url, metrics_endpoint=configured)
    assert clients.metrics_batch_url("EastUS") == expected


def test_the_config_file_and_environment_name_the_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "costagent.toml"
    path.write_text('[azure]\nmetrics_endpoint = "https://{region}.metrics.monitor.azure.us"\n', encoding="utf-8")
    assert load(path, env={}).azure.metrics_endpoint == "https://{region}.metrics.monitor.azure.us"
    env = {"COSTAGENT_AZURE_METRICS_ENDPOINT": "off"}
    assert load(path, env=env).azure.metrics_endpoint == "off"


# -- the emulator's route -------------------------------------------------------------------------------------------
def batch_client(emu: AzureMonitorEmulator) -> Any:
    return make_clients(emu, metrics_endpoint=emu.url, retry_total=0).metrics_batch(REGION)


def ask(emu: AzureMonitorEmulator, ids: list[str], namespace: str = "Microsoft.Compute/virtualMachines",
        names: tuple[str, ...] = ("Percentage CPU",), **kwargs: Any) -> list[Any]:
    return batch_client(emu).query_resources(resource_ids=ids, metric_namespace=namespace, metric_names=list(names),
                                             timespan=(WINDOW.start, WINDOW.end), granularity=HOUR, **kwargs)


def test_emulated_answer_has_the_reference_shape(emu: AzureMonitorEmulator) -> None:
    seed_host(emu, "s")
    emu.add_resource(vm("s").ref.id, location="westus2")
    raw: list[Any] = []
    [result] = ask(emu, [vm("s").ref.id], aggregations=["average"],
                   cls=lambda response, body, _h: raw.append(response.http_response.json()) or body)
    [entry] = raw[0]["values"]
    assert set(entry) == {"starttime", "endtime", "interval", "namespace", "resourceregion", "resourceid", "value"}
    assert (entry["resourceid"], entry["resourceregion"], entry["interval"]) == (vm("s").ref.id, "westus2", "PT1H")
    [metric] = result.metrics
    assert metric.name == "Percentage CPU" and metric.unit == "Percent"
    assert [p.average for p in metric.timeseries[0].data] == [cpu(0, k) + 0.5 for k in range(N_HOURS)]


@pytest.mark.parametrize("case, message", [
    ("too_many", "Between 1 and 50"),
    ("other_subscription", "not in subscription"),
    ("custom_namespace", "custom metrics are not supported"),
])
def test_emulator_refuses_what_the_guide_forbids(emu: AzureMonitorEmulator, case: str, message: str) -> None:
    ids, namespace = [vm("a").ref.id], "Microsoft.Compute/virtualMachines"
    if case == "too_many":
        ids = [vm(f"n{i}").ref.id for i in range(51)]
    elif case == "other_subscription":
        ids = [vm("a").ref.id, vm("b", sub="00000000-0000-0000-0000-0000000000b2").ref.id]
    else:
        namespace = "Telegraf/nvidia_smi"
    with pytest.raises(HttpResponseError) as caught:
        ask(emu, ids, namespace=namespace)
    assert caught.value.status_code == 400 and message in str(caught.value)
    body = caught.value.response.json()
    assert body["error"]["code"] == "BadRequest"  # the batch API's error shape: wrapped in "error"
