"""Helpers shared by the Azure Monitor and Cost Management tests: a token credential, clients, VMs."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from azure.core.credentials import AccessToken

from providers.azure.client import AzureClients
from providers.model import (
    Accelerators,
    Cloud,
    PricingModel,
    Resource,
    ResourceRef,
    ResourceState,
)

SUB = "00000000-0000-0000-0000-0000000000a1"
REGION = "eastus"
HOUR = timedelta(hours=1)
#: A fixed 'now' (the emulators keep what they are given; nothing reads the wall clock).
NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)
A100 = Accelerators("A100", 1, 80.0)


class StaticCredential:
    """Any object with ``get_token`` is a credential for azure-core; this one never expires."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("test-token", int(time.time()) + 3600)


def make_clients(emulator: Any, **kwargs: Any) -> AzureClients:
    return AzureClients(credential=StaticCredential(), base_url=emulator.url, ca_bundle=emulator.ca_path,
                        polling_interval=0, retry_backoff_factor=0.01, **kwargs)


def vm_id(name: str, rg: str = "rg-gpu", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"


def vm(name: str, gpus: int = 1, state: ResourceState = ResourceState.RUNNING, size: str = "Standard_NC24ads_A100_v4",
       sub: str = SUB) -> Resource:
    """A VM as the inventory builds it: ``ref.id`` is its ARM id."""
    accel = Accelerators("A100", gpus, 80.0) if gpus else None
    return Resource(ResourceRef(Cloud.AZURE, sub, REGION, vm_id(name, sub=sub)), size, state, PricingModel.ON_DEMAND,
                    accel, native_id=f"vmid-{name}")


def hours(start: datetime, n: int, step: timedelta = HOUR) -> list[datetime]:
    return [start + k * step for k in range(n)]
