"""Which clouds an audit reads, and their providers: from flags, the config file, or the demo.

Region names tell their cloud apart (``us-east-1`` AWS, ``us-central1`` GCP, ``eastus`` Azure), so
one ``--region`` list serves a multi-cloud audit. A cloud with no region given audits its default:
AWS the profile's region, GCP and Azure every region (location) where the inventory found instances.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent.audit import Target
from agent.config import Config
from providers.errors import ConfigurationError, ProviderError
from providers.model import Cloud

REGION_PATTERNS = {
    Cloud.AWS: re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$"),  # us-east-1, us-gov-west-1
    Cloud.GCP: re.compile(r"^[a-z]+-[a-z]+\d+$"),  # us-central1, europe-west4
    Cloud.AZURE: re.compile(r"^[a-z]+[a-z0-9]*$"),  # eastus, westeurope, eastus2
}
EXTRAS = {Cloud.AWS: "aws", Cloud.GCP: "gcp", Cloud.AZURE: "azure"}


def cloud_of_region(region: str) -> Cloud | None:
    return next((c for c, pattern in REGION_PATTERNS.items() if pattern.match(region)), None)


def split_regions(regions: Sequence[str], clouds: Sequence[Cloud]) -> dict[Cloud, tuple[str, ...]]:
    """``--region`` values per cloud; a name no chosen cloud uses is a usage error naming it."""
    out: dict[Cloud, list[str]] = {c: [] for c in clouds}
    for region in regions:
        cloud = cloud_of_region(region)
        if cloud is None or cloud not in out:
            known = ", ".join(f"{c} like {ex}" for c, ex in
                              ((Cloud.AWS, "us-east-1"), (Cloud.GCP, "us-central1"), (Cloud.AZURE, "eastus"))
                              if c in clouds)
            raise ConfigurationError(f"--region {region!r} is not a region of the audited cloud(s) ({known})")
        out[cloud].append(region)
    return {c: tuple(dict.fromkeys(rs)) for c, rs in out.items()}


def default_clouds(config: Config, demo: bool) -> tuple[Cloud, ...]:
    """No ``--cloud``: the demo shows all three; else the clouds the config file has a section for, else AWS."""
    if demo:
        return (Cloud.AWS, Cloud.GCP, Cloud.AZURE)
    named = tuple(c for c, section in ((Cloud.AWS, config.aws), (Cloud.GCP, config.gcp), (Cloud.AZURE, config.azure))
                  if section != type(section)())
    return named or (Cloud.AWS,)


@dataclass(frozen=True)
class Opened:
    targets: tuple[Target, ...]
    billing_paths: tuple[str, ...]  # the demo's billing exports (read when no --billing is given)


@contextmanager
def open_targets(clouds: Sequence[Cloud], config: Config, *, demo: bool, regions: Sequence[str],
                 profile: str | None, live_prices: bool, now: datetime, lookback: timedelta) -> Iterator[Opened]:
    """Providers for ``clouds`` with their regions (real, or the embedded demo cloud's emulators)."""
    wanted = split_regions(regions, clouds)
    targets: list[Target] = []
    billing: list[str] = []
    with ExitStack() as stack:
        for cloud in clouds:
            provider, default, paths = stack.enter_context(
                _open(cloud, config, demo=demo, profile=profile, live_prices=live_prices, now=now,
                      lookback=lookback))
            error: ProviderError | None = None
            chosen = wanted[cloud] or (tuple(default) if default is not None else ())
            if not chosen and default is None:
                try:
                    chosen = tuple(provider.default_regions())  # GCP/Azure: where the inventory has instances
                except ConfigurationError:
                    raise
                except ProviderError as exc:  # this cloud cannot be listed; the others are still audited
                    error = exc
            if not chosen and cloud == Cloud.AWS:
                raise ConfigurationError("no AWS region: pass --region or set AWS_DEFAULT_REGION (or a region in "
                                         "your AWS profile, or aws.regions in the config file)")
            targets.append(Target(provider, chosen, error))
            billing += paths
        yield Opened(tuple(targets), tuple(billing))


#: What each cloud's provider (and its demo) imports: checked before opening, so that a missing extra is a
#: usage error naming it, and an ImportError later in the run is never mistaken for one.
_MODULES = {Cloud.AWS: ("providers.aws",), Cloud.GCP: ("providers.gcp",), Cloud.AZURE: ("providers.azure",)}
_DEMO_MODULES = {Cloud.AWS: "providers.sandbox", Cloud.GCP: "providers.sandbox.gcp_demo",
                 Cloud.AZURE: "providers.sandbox.azure_demo"}


def _require(cloud: Cloud, demo: bool) -> None:
    for module in _MODULES[cloud] + ((_DEMO_MODULES[cloud],) if demo else ()):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            if (exc.name or "").split(".")[0] in ("agent", "providers", "recommenders", "reports"):
                raise  # our own bug, not a missing extra
            what, extra = ("the demo", "demo") if demo else (f"the {cloud} provider", EXTRAS[cloud])
            raise ConfigurationError(f"{what} needs {exc.name} (not installed): "
                                     f"pip install 'costagent[{extra}]'") from exc


def _open(cloud: Cloud, config: Config, *, demo: bool, profile: str | None, live_prices: bool, now: datetime,
          lookback: timedelta) -> AbstractContextManager[tuple[Any, Sequence[str] | None, Sequence[str]]]:
    """(provider, its regions or None for the provider's default, billing paths)."""
    _require(cloud, demo)
    if cloud == Cloud.AWS:
        return _aws(config, demo, profile, live_prices, now, lookback)
    if cloud == Cloud.GCP:
        return _gcp(config, demo, live_prices, now, lookback)
    return _azure(config, demo, live_prices, now, lookback)


@contextmanager
def _aws(config: Config, demo: bool, profile: str | None, live_prices: bool, now: datetime,
         lookback: timedelta) -> Iterator[tuple[Any, Sequence[str] | None, Sequence[str]]]:
    from providers.aws import AwsProvider
    from providers.aws.client import AwsClients

    if demo:
        from providers.sandbox import demo_cloud

        # moto prints diagnostics to stdout; keep stdout for the report alone.
        with redirect_stdout(sys.stderr), demo_cloud(now, lookback) as cloud:
            clients = AwsClients(cloud.server.session_factory(), endpoint_url=cloud.server.url)
            # moto has no Pricing API and answers spot history with junk: the demo prices from the catalog.
            yield AwsProvider(clients, live_prices=False), cloud.regions, cloud.billing_paths
        return
    provider = AwsProvider(AwsClients(profile=profile or config.aws.profile), live_prices=live_prices)
    configured = tuple(config.aws.regions) or tuple(provider.default_regions())  # a bad profile fails here
    yield provider, configured, ()


@contextmanager
def _gcp(config: Config, demo: bool, live_prices: bool, now: datetime,
         lookback: timedelta) -> Iterator[tuple[Any, Sequence[str] | None, Sequence[str]]]:
    from providers.gcp import GcpProvider
    from providers.gcp.client import GcpClients

    if demo:
        from providers.sandbox.gcp_demo import gcp_demo_cloud

        with gcp_demo_cloud(now, lookback) as cloud:
            # The demo's own (anonymous) credentials: a machine's ADC must not be sent to the emulators.
            clients = GcpClients(projects=cloud.projects, endpoints=cloud.endpoints, credentials=cloud.credentials,
                                 retry_timeout=10)
            yield (GcpProvider(clients, live_prices=False, billing_table=cloud.billing_table), cloud.regions, ())
        return
    gcp = config.gcp
    clients = GcpClients(projects=gcp.projects, endpoints=gcp.endpoints)
    yield GcpProvider(clients, live_prices=live_prices, billing_table=gcp.billing_table), gcp.regions or None, ()


@contextmanager
def _azure(config: Config, demo: bool, live_prices: bool, now: datetime,
           lookback: timedelta) -> Iterator[tuple[Any, Sequence[str] | None, Sequence[str]]]:
    from providers.azure import AzureProvider
    from providers.azure.client import AzureClients

    if demo:
        from providers.sandbox.azure_demo import azure_demo_cloud

        with azure_demo_cloud(now, lookback) as cloud:
            clients = AzureClients(subscriptions=cloud.subscriptions, credential=cloud.credential,
                                   base_url=cloud.base_url, ca_bundle=cloud.ca_path, polling_interval=0,
                                   metrics_endpoint=cloud.metrics_endpoint)
            yield AzureProvider(clients, live_prices=False), cloud.regions, ()
        return
    az = config.azure
    clients = AzureClients(subscriptions=az.subscriptions, base_url=az.base_url, ca_bundle=az.ca_bundle,
                           metrics_endpoint=az.metrics_endpoint)
    yield AzureProvider(clients, live_prices=live_prices), az.regions or None, ()


def actuator_for(provider: Any) -> Any:
    """The ``providers.base.Actuator`` of an opened provider, over the same clients (credentials, endpoints)."""
    if provider.cloud == Cloud.AWS:
        from providers.aws.actuator import AwsActuator

        return AwsActuator(provider.clients)
    if provider.cloud == Cloud.GCP:
        from providers.gcp.actuator import GcpActuator

        return GcpActuator(provider.clients)
    from providers.azure.actuator import AzureActuator

    return AzureActuator(provider.clients)
