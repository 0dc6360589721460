"""One seeding vocabulary over the three clouds' local emulators, for the provider contract suite.

A ``Backend`` starts a cloud's emulators once (AWS: a moto server; GCP: the Compute Engine REST emulator and
the Cloud Monitoring gRPC emulator; Azure: the ARM HTTPS emulator with its Azure Monitor and Cost Management
extensions) and hands out a fresh, isolated ``Harness`` per test: AWS resets moto, GCP seeds a new project,
Azure a new subscription. Seeding goes through each emulator's public seeding API (boto3 calls for moto);
``provider()`` builds the real provider exactly as a run does, only pointed at the emulators.

Telemetry lies on ``TIMES``: two samples an hour (hh:10 and hh:40) over the 72 hours ending at ``NOW``. Every
sample is off the period boundaries, so all clouds agree on the hourly period it belongs to, and the
period's maximum (GPU) and mean (CPU, network) are observable. Units as seeded: GPU utilization and CPU in
percent, network in bytes per second over the half hour ending at the sample, written the way each
publisher writes it (AWS and Azure: bytes since the previous sample; GCP: a DELTA series).

Failures are injected on the inventory API only: AWS through botocore's documented ``before-send`` event (a
canned EC2 error answer, the request never leaves the client; moto cannot inject errors), GCP and Azure
through the emulators' ``fail_next``. Each answer is the API's own: EC2 ``AuthFailure`` 401,
``UnauthorizedOperation`` 403 and ``RequestLimitExceeded`` 503 (EC2's throttling status), Google 401/403/429
and ARM 401/403/429.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from providers.base import Provider
from providers.model import Cloud, Window

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
PERIOD = timedelta(hours=1)
HOURS = 72
WINDOW = Window(NOW - HOURS * PERIOD, NOW)
#: The sample times of every seeded series: hh:10 and hh:40 of each hour of ``WINDOW``.
TIMES = pd.DatetimeIndex([WINDOW.start + k * PERIOD + timedelta(minutes=m) for k in range(HOURS) for m in (10, 40)])
SAMPLE_SECONDS = 1800.0
QUIET_CPU_PCT = 2.0
QUIET_NET_BYTES_PER_S = 2_000.0


@dataclass(frozen=True)
class Vm:
    """What was seeded, and what the inventory must say about it (``id`` is the expected ``ResourceRef.id``)."""

    name: str
    id: str
    region: str
    instance_type: str
    gpus: int
    gpu_model: str | None
    running: bool
    tags: Mapping[str, str] = field(default_factory=dict)


class Harness(Protocol):
    """One cloud's emulators seen through the shared vocabulary; ``Vm.id`` is what ``ResourceRef.id`` must be."""

    cloud: Cloud
    region: str
    other_region: str
    account: str
    #: Instances per inventory page: seeding ``page_size + 1`` VMs makes the inventory page at least twice.
    page_size: int
    #: The inventory operation as ``api_calls()`` keys it; error messages must name it.
    operation: str
    #: Failure kinds this cloud's inventory API cannot answer, with why.
    unsupported: Mapping[str, str]

    def add_gpu_vm(self, name: str, gpus: int, util: Any, *, region: str | None = None, running: bool = True,
                   tags: Mapping[str, str] | None = None, cpu: Any = None, net_in: Any = None,
                   net_out: Any = None) -> Vm:
        """A VM of the cloud's 1- or 4-GPU type; ``util``: gpus x len(TIMES) percent; host series default quiet."""

    def add_cpu_vm(self, name: str, *, region: str | None = None, tags: Mapping[str, str] | None = None) -> Vm: ...

    def add_gpu_vm_without_telemetry(self, name: str, gpus: int = 1, *, region: str | None = None,
                                     tags: Mapping[str, str] | None = None) -> Vm:
        """Running, with the platform's CPU and network series but no GPU series."""

    def add_stopped_gpu_vm(self, name: str, gpus: int = 1, *, region: str | None = None,
                           tags: Mapping[str, str] | None = None) -> Vm: ...

    def fail_next(self, kind: str) -> None:
        """The next inventory request(s) fail: ``auth`` (401), ``forbidden`` (403), ``throttle`` (once),
        ``throttle_forever`` (more often than the client retries)."""

    def missing_account(self) -> str | None:
        """A project / subscription the emulator does not know; None where the inventory names none."""

    def provider(self, account: str | None = None) -> Provider: ...

    def inventory_requests(self) -> int:
        """Inventory list requests sent so far (failed ones and retries included)."""

    def close(self) -> None: ...


def _host(cpu: Any, net_in: Any, net_out: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(TIMES)
    return tuple(np.broadcast_to(np.asarray(default if v is None else v, dtype=np.float64), (n,)).copy()
                 for v, default in ((cpu, QUIET_CPU_PCT), (net_in, QUIET_NET_BYTES_PER_S),
                                    (net_out, QUIET_NET_BYTES_PER_S)))  # type: ignore[return-value]


class _Base:
    """The shared vocabulary over three primitives: create a VM, publish its host and its GPU series."""

    region: str
    gpu_types: ClassVar[Mapping[int, tuple[str, str]]]  # GPU count -> (instance type, GPU model it must report)
    cpu_type: str

    def _create(self, name: str, region: str, instance_type: str, tags: dict[str, str], running: bool) -> str:
        raise NotImplementedError

    def _publish_host(self, vm: Vm, cpu: np.ndarray, net_in: np.ndarray, net_out: np.ndarray) -> None:
        raise NotImplementedError

    def _publish_gpus(self, vm: Vm, util: np.ndarray) -> None:
        raise NotImplementedError

    def _vm(self, name: str, region: str | None, gpus: int, tags: Mapping[str, str] | None, running: bool) -> Vm:
        itype, model = self.gpu_types[gpus] if gpus else (self.cpu_type, None)
        region = region or self.region
        vm_id = self._create(name, region, itype, dict(tags or {}), running)
        return Vm(name, vm_id, region, itype, gpus, model, running, dict(tags or {}))

    def add_gpu_vm(self, name: str, gpus: int, util: Any, *, region: str | None = None, running: bool = True,
                   tags: Mapping[str, str] | None = None, cpu: Any = None, net_in: Any = None,
                   net_out: Any = None) -> Vm:
        values = np.asarray(util, dtype=np.float64).reshape(gpus, len(TIMES))
        vm = self._vm(name, region, gpus, tags, running)
        self._publish_host(vm, *_host(cpu, net_in, net_out))
        self._publish_gpus(vm, values)
        return vm

    def add_cpu_vm(self, name: str, *, region: str | None = None, tags: Mapping[str, str] | None = None) -> Vm:
        return self._vm(name, region, 0, tags, True)

    def add_gpu_vm_without_telemetry(self, name: str, gpus: int = 1, *, region: str | None = None,
                                     tags: Mapping[str, str] | None = None) -> Vm:
        vm = self._vm(name, region, gpus, tags, True)
        self._publish_host(vm, *_host(None, None, None))
        return vm

    def add_stopped_gpu_vm(self, name: str, gpus: int = 1, *, region: str | None = None,
                           tags: Mapping[str, str] | None = None) -> Vm:
        return self._vm(name, region, gpus, tags, False)


# -- AWS: moto server, boto3 seeding, botocore before-send for errors ----------------------------------------
class _Body:
    """The ``raw`` of a canned ``AWSResponse``: botocore reads it through ``stream()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


_AWS_FAILURES = {"auth": (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
                 "forbidden": (403, "UnauthorizedOperation", "You are not authorized to perform this operation."),
                 "throttle": (503, "RequestLimitExceeded", "Request limit exceeded.")}
AWS_MAX_ATTEMPTS = 3  # AwsClients' documented knob: standard-mode backoff is up to 2**n s per retry, keep it short


class AwsHarness(_Base):
    cloud = Cloud.AWS
    region, other_region = "us-east-1", "us-west-2"
    account = "123456789012"  # moto's default account
    #: moto pages DescribeInstances by reservation (one per RunInstances), 100 a page without MaxResults.
    page_size = 100
    operation = "ec2.DescribeInstances"
    unsupported: ClassVar[Mapping[str, str]] = {"not_found": "EC2 DescribeInstances lists the region of the account the credentials belong to: "
                                "no account or project is named, so the inventory has no not-found answer"}
    gpu_types: ClassVar[Mapping[int, tuple[str, str]]] = {1: ("g5.xlarge", "A10G"), 4: ("g5.12xlarge", "A10G")}
    cpu_type = "m5.large"

    def __init__(self, backend: AwsBackend) -> None:
        from tests.aws.support import reset

        self._backend = backend
        reset(backend.server.url)
        self._lock = threading.Lock()
        self._failures: list[tuple[int, str, str]] = []
        self._sent = 0

    def _session(self) -> Any:
        import boto3
        import botocore.session

        core = botocore.session.Session()
        core.register_component("data_loader", self._backend.loader)  # the SDK's JSON models, parsed once
        core.register(f"before-send.ec2.{self.operation.split('.')[1]}", self._before_send)
        return boto3.session.Session(region_name=self.region, aws_access_key_id="contract",
                                     aws_secret_access_key="contract", botocore_session=core)

    def _before_send(self, request: Any, **_: Any) -> Any:
        """botocore's ``before-send`` event: a returned response is used instead of sending the request."""
        from botocore.awsrequest import AWSResponse

        with self._lock:
            self._sent += 1
            if not self._failures:
                return None
            status, code, message = self._failures.pop(0)
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code><Message>'
                f'{message}</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>').encode()
        return AWSResponse(request.url, status, {"Content-Type": "text/xml;charset=UTF-8"}, _Body(body))

    def _create(self, name: str, region: str, instance_type: str, tags: dict[str, str], running: bool) -> str:
        ec2 = self._backend.client("ec2", region)
        kwargs: dict[str, Any] = {"ImageId": "ami-12c6146b", "InstanceType": instance_type, "MinCount": 1,
                                  "MaxCount": 1}
        if tags:
            kwargs["TagSpecifications"] = [{"ResourceType": "instance",
                                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        iid = str(ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"])
        if not running:
            ec2.stop_instances(InstanceIds=[iid])
        return iid

    def _put(self, vm: Vm, namespace: str, data: list[dict[str, Any]]) -> None:
        cw = self._backend.client("cloudwatch", vm.region)
        for start in range(0, len(data), 1000):
            cw.put_metric_data(Namespace=namespace, MetricData=data[start:start + 1000])

    def _publish_host(self, vm: Vm, cpu: np.ndarray, net_in: np.ndarray, net_out: np.ndarray) -> None:
        """``AWS/EC2`` as EC2 publishes it: CPUUtilization in percent, NetworkIn/Out in bytes since the last sample."""
        from providers.sandbox.aws_seed import datum

        dims = [{"Name": "InstanceId", "Value": vm.id}]
        self._put(vm, "AWS/EC2", [d for t, c, i, o in zip(TIMES, cpu, net_in, net_out) for d in (
            datum("CPUUtilization", dims, t.to_pydatetime(), c, "Percent"),
            datum("NetworkIn", dims, t.to_pydatetime(), i * SAMPLE_SECONDS, "Bytes"),
            datum("NetworkOut", dims, t.to_pydatetime(), o * SAMPLE_SECONDS, "Bytes"))])

    def _publish_gpus(self, vm: Vm, util: np.ndarray) -> None:
        """``CWAgent`` ``nvidia_smi_utilization_gpu`` per GPU, dimensions as the agent's nvidia_gpu plugin sets them."""
        from providers.sandbox.aws_seed import datum, gpu_name

        self._put(vm, "CWAgent", [
            datum("nvidia_smi_utilization_gpu", [{"Name": "InstanceId", "Value": vm.id},
                                                 {"Name": "index", "Value": str(g)},
                                                 {"Name": "name", "Value": gpu_name(vm.instance_type)},
                                                 {"Name": "host", "Value": "ip-10-0-0-1.ec2.internal"}],
                  t.to_pydatetime(), v, "Percent")
            for g in range(util.shape[0]) for t, v in zip(TIMES, util[g])])

    def fail_next(self, kind: str) -> None:
        status, code, message = _AWS_FAILURES["throttle" if kind == "throttle_forever" else kind]
        with self._lock:
            self._failures += [(status, code, message)] * (AWS_MAX_ATTEMPTS + 2 if kind == "throttle_forever" else 1)

    def missing_account(self) -> str | None:
        return None

    def provider(self, account: str | None = None) -> Provider:
        from providers.aws import AwsProvider
        from providers.aws.client import AwsClients

        return AwsProvider(AwsClients(self._session, endpoint_url=self._backend.server.url,
                                      max_attempts=AWS_MAX_ATTEMPTS), live_prices=False)

    def inventory_requests(self) -> int:
        return self._sent

    def close(self) -> None:
        self._failures.clear()


@dataclass
class AwsBackend:
    server: Any  # providers.sandbox.MotoServer
    loader: Any
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def client(self, service: str, region: str) -> Any:
        """A seeding client (not the provider's: its calls are not counted); moto resets keep it valid."""
        if (service, region) not in self._clients:
            import boto3
            import botocore.session

            core = botocore.session.Session()
            core.register_component("data_loader", self.loader)
            session = boto3.session.Session(region_name=region, aws_access_key_id="seed", aws_secret_access_key="seed",
                                            botocore_session=core)
            self._clients[(service, region)] = session.client(service, endpoint_url=self.server.url)
        return self._clients[(service, region)]

    def harness(self) -> AwsHarness:
        return AwsHarness(self)


# -- GCP: Compute Engine REST emulator + Cloud Monitoring gRPC emulator -----------------------------------------
_GCP_FAILURES = {"auth": (401, 3), "forbidden": (403, 1), "throttle": (429, 1), "throttle_forever": (429, 500)}
GCP_ZONES = {"us-central1": "us-central1-a", "europe-west4": "europe-west4-a"}


class GcpHarness(_Base):
    cloud = Cloud.GCP
    region, other_region = "us-central1", "europe-west4"
    page_size = 3  # the emulator's default page cap (the real API's is 500)
    operation = "compute.Instances.AggregatedList"
    unsupported: ClassVar[Mapping[str, str]] = {}
    gpu_types: ClassVar[Mapping[int, tuple[str, str]]] = {1: ("g2-standard-8", "L4"), 4: ("a2-highgpu-4g", "A100")}
    cpu_type = "n1-standard-4"
    _models: ClassVar[dict[str, str]] = {"L4": "NVIDIA L4", "A100": "NVIDIA A100-SXM4-40GB"}

    def __init__(self, backend: GcpBackend, project: str) -> None:
        self._backend, self.account = backend, project
        self._numeric: dict[str, str] = {}
        backend.compute.add_project(project)

    def _create(self, name: str, region: str, instance_type: str, tags: dict[str, str], running: bool) -> str:
        body = self._backend.compute.add_instance(self.account, GCP_ZONES[region], name, instance_type, labels=tags,
                                                  status="RUNNING" if running else "TERMINATED")
        self._numeric[name] = str(body["id"])
        return name

    def _publish_host(self, vm: Vm, cpu: np.ndarray, net_in: np.ndarray, net_out: np.ndarray) -> None:
        from providers.sandbox.gcp_monitoring import add_gce_host

        add_gce_host(self._backend.monitoring, self.account, GCP_ZONES[vm.region], self._numeric[vm.name], TIMES, cpu,
                     net_in, net_out, instance_name=vm.name)

    def _publish_gpus(self, vm: Vm, util: np.ndarray) -> None:
        from providers.sandbox.gcp_monitoring import add_ops_agent_gpu

        for g in range(util.shape[0]):
            add_ops_agent_gpu(self._backend.monitoring, self.account, GCP_ZONES[vm.region], self._numeric[vm.name], g,
                              TIMES, util[g], model=self._models[vm.gpu_model or "L4"], instance_name=vm.name)

    def fail_next(self, kind: str) -> None:
        status, count = _GCP_FAILURES[kind]
        self._backend.compute.fail_next(status, count)

    def missing_account(self) -> str | None:
        return f"{self.account}-missing"

    def provider(self, account: str | None = None) -> Provider:
        from google.auth.credentials import AnonymousCredentials

        from providers.gcp import GcpProvider
        from providers.gcp.client import GcpClients

        url = self._backend.compute.url
        return GcpProvider(GcpClients(projects=[account or self.account], credentials=AnonymousCredentials(),
                                      endpoints={"compute": url, "monitoring": self._backend.monitoring.address,
                                                 "cloudresourcemanager": url},
                                      retry_initial=0.01, retry_timeout=2), live_prices=False)

    def inventory_requests(self) -> int:
        return self._backend.compute.count(f"/compute/v1/projects/{self.account}/aggregated/instances")

    def close(self) -> None:
        while self._backend.compute.injected_failure() is not None:
            pass


@dataclass
class GcpBackend:
    compute: Any  # GcpComputeEmulator
    monitoring: Any  # GcpMonitoringEmulator
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def harness(self) -> GcpHarness:
        return GcpHarness(self, f"contract-{next(self._ids)}")


# -- Azure: ARM HTTPS emulator with the Azure Monitor and Cost Management extensions ----------------------------
_AZURE_FAILURES = {"auth": (401, 1), "forbidden": (403, 1), "throttle": (429, 1), "throttle_forever": (429, 10)}


class _Token:
    """A credential: any object whose ``get_token`` returns an ``AccessToken`` (what azure-core asks)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        import time

        from azure.core.credentials import AccessToken

        return AccessToken("contract-token", int(time.time()) + 3600)


class AzureHarness(_Base):
    cloud = Cloud.AZURE
    region, other_region = "eastus", "westus2"
    page_size = 2  # the emulator's default page size
    operation = "compute.VirtualMachines.ListAll"
    unsupported: ClassVar[Mapping[str, str]] = {}
    gpu_types: ClassVar[Mapping[int, tuple[str, str]]] = {1: ("Standard_NC4as_T4_v3", "T4"), 4: ("Standard_NC64as_T4_v3", "T4")}
    cpu_type = "Standard_D4ds_v5"
    resource_group = "contract-rg"

    def __init__(self, backend: AzureBackend, subscription: str) -> None:
        self._backend, self.account = backend, subscription
        backend.arm.add_subscription(subscription)

    def _create(self, name: str, region: str, instance_type: str, tags: dict[str, str], running: bool) -> str:
        body = self._backend.arm.add_vm(self.account, self.resource_group, name, instance_type, region, tags=tags,
                                        power_state="running" if running else "deallocated")
        return str(body["id"])

    def _publish_host(self, vm: Vm, cpu: np.ndarray, net_in: np.ndarray, net_out: np.ndarray) -> None:
        """The VM's platform metrics: ``Percentage CPU``, ``Network In/Out Total`` (bytes since the last sample)."""
        monitor = self._backend.monitor
        monitor.add_series(vm.id, "Percentage CPU", (TIMES, cpu), unit="Percent", location=vm.region)
        monitor.add_series(vm.id, "Network In Total", (TIMES, net_in * SAMPLE_SECONDS), unit="Bytes")
        monitor.add_series(vm.id, "Network Out Total", (TIMES, net_out * SAMPLE_SECONDS), unit="Bytes")

    def _publish_gpus(self, vm: Vm, util: np.ndarray) -> None:
        """Telegraf's nvidia_smi input through its azure_monitor output (``Telegraf/nvidia_smi``)."""
        for g in range(util.shape[0]):
            self._backend.monitor.add_gpu_series(vm.id, g, "utilization_gpu", (TIMES, util[g]), model="Tesla T4",
                                                 host=vm.name)

    def fail_next(self, kind: str) -> None:
        status, count = _AZURE_FAILURES[kind]
        self._backend.arm.fail_next(status, count)

    def missing_account(self) -> str | None:
        return str(uuid.uuid4())

    def provider(self, account: str | None = None) -> Provider:
        from providers.azure import AzureProvider
        from providers.azure.client import AzureClients

        arm = self._backend.arm
        return AzureProvider(AzureClients(subscriptions=[account or self.account], credential=_Token(),
                                          base_url=arm.url, ca_bundle=arm.ca_path, polling_interval=0,
                                          retry_backoff_factor=0.01), live_prices=False)

    def inventory_requests(self) -> int:
        return self._backend.arm.count(f"/subscriptions/{self.account}/providers/Microsoft.Compute/virtualMachines?")

    def close(self) -> None:
        while self._backend.arm.injected_failure() is not None:
            pass


@dataclass
class AzureBackend:
    arm: Any  # AzureArmEmulator
    monitor: Any  # AzureMonitorExtension

    def harness(self) -> AzureHarness:
        return AzureHarness(self, str(uuid.uuid4()))


# -- starting the emulators once per cloud ---------------------------------------------------------------------
@contextmanager
def backend(cloud: str) -> Iterator[Callable[[], Harness]]:
    """The cloud's emulators for the duration of the block; calling the result gives a fresh ``Harness``."""
    if cloud == "aws":
        import botocore.loaders

        from providers.sandbox import moto_server

        with moto_server((AwsHarness.region, AwsHarness.other_region)) as server:
            yield AwsBackend(server, botocore.loaders.create_loader()).harness
    elif cloud == "gcp":
        from providers.sandbox.gcp_compute import GcpComputeEmulator
        from providers.sandbox.gcp_monitoring import GcpMonitoringEmulator

        with GcpComputeEmulator(zones=tuple(GCP_ZONES.values()), now=lambda: NOW) as compute, \
                GcpMonitoringEmulator() as monitoring:
            yield GcpBackend(compute, monitoring).harness
    elif cloud == "azure":
        from providers.sandbox.azure_arm import AzureArmEmulator
        from providers.sandbox.azure_costs import AzureCostsExtension
        from providers.sandbox.azure_monitor import AzureMonitorExtension

        monitor = AzureMonitorExtension()
        with AzureArmEmulator(extensions=[monitor, AzureCostsExtension()]) as arm:
            yield AzureBackend(arm, monitor).harness
    else:
        raise ValueError(f"unknown cloud {cloud!r}")
