"""Helpers for Azure tests: the local ARM emulator (HTTPS) and ``AzureClients`` pointed at it.

The clients are the real management clients over real HTTP; the credential is the smallest object
azure-core accepts (``get_token`` returning an ``AccessToken``). ``polling_interval=0`` keeps
long-running operations from waiting 30 s per poll; a small backoff keeps 429 retries fast.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.core.credentials import AccessToken

from providers.azure.client import AzureClients
from providers.catalog import PriceCatalog
from providers.model import Cloud
from providers.sandbox.azure_arm import AzureArmEmulator

SUB = "3f2c8a51-6d1e-4b7a-9c0d-2e5f8a1b4c6d"
OTHER_SUB = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
RG = "ml-training"
CATALOG = PriceCatalog.shipped(Cloud.AZURE)


class StaticCredential:
    """A credential handing out one fixed bearer token (what azure-core's auth policy needs)."""

    def __init__(self, token: str = "test-token") -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


@contextmanager
def arm_emulator(**kwargs: Any) -> Iterator[AzureArmEmulator]:
    """A started emulator with ``SUB`` registered (kwargs: page_size, lro_polls, extensions)."""
    with AzureArmEmulator(**kwargs) as arm:
        arm.add_subscription(SUB, display_name="ML research")
        yield arm


def clients_for(arm: AzureArmEmulator, **kwargs: Any) -> AzureClients:
    """``AzureClients`` on the emulator; kwargs override (credential, retry_total, subscriptions)."""
    options: dict[str, Any] = {"credential": StaticCredential(), "base_url": arm.url, "ca_bundle": arm.ca_path,
                               "polling_interval": 0, "retry_backoff_factor": 0.01}
    options.update(kwargs)
    return AzureClients(**options)


def vm_id(name: str, resource_group: str = RG, subscription: str = SUB) -> str:
    return (f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/"
            f"virtualMachines/{name}")


def scale_set_id(name: str, resource_group: str = RG, subscription: str = SUB) -> str:
    return (f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/"
            f"virtualMachineScaleSets/{name}")
