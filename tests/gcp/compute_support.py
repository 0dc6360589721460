"""Helpers for the Compute Engine tests: the local emulator, clients pointed at it, a fixed clock.

The real google-cloud-compute and google-cloud-resource-manager clients talk REST to
``providers.sandbox.gcp_compute.GcpComputeEmulator`` over HTTP; nothing in the SDK is patched.
A test module imports the fixtures ``emulator`` and ``clients`` by their function names
(``from tests.gcp.compute_support import clients_fixture, emulator_fixture``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone

import pytest
from google.auth.credentials import AnonymousCredentials

from providers.gcp.client import GcpClients
from providers.sandbox.gcp_compute import GcpComputeEmulator

PROJECT = "ml-prod-4821"
OTHER_PROJECT = "ml-research-1093"
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)
#: The zones the test emulator knows (fewer zones: fewer machine type pages to read).
ZONES = ("us-central1-a", "us-central1-b", "us-central1-c", "us-east1-b", "us-east4-c", "us-west1-a",
         "europe-west4-a", "asia-southeast1-b")


def make_clients(url: str, projects: Sequence[str] = (PROJECT,), *, retry_timeout: float = 0.3) -> GcpClients:
    """Clients for ``projects`` against the emulator; anonymous credentials (never the machine's ADC) and
    short retries so that a throttled test ends in well under a second."""
    return GcpClients(projects=projects, endpoints={"compute": url, "cloudresourcemanager": url},
                      credentials=AnonymousCredentials(), retry_timeout=retry_timeout, retry_initial=0.01,
                      timeout=10.0)


def start_emulator(**kwargs: object) -> GcpComputeEmulator:
    """A started emulator with the fixed clock and ``ZONES`` (``page_size`` 3 by default: every list pages)."""
    kwargs.setdefault("now", lambda: NOW)
    kwargs.setdefault("zones", ZONES)
    return GcpComputeEmulator(**kwargs).start()  # type: ignore[arg-type]


@pytest.fixture(name="emulator")
def emulator_fixture() -> Iterator[GcpComputeEmulator]:
    emu = start_emulator()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(name="clients")
def clients_fixture(emulator: GcpComputeEmulator) -> GcpClients:
    return make_clients(emulator.url)


def no_sleep(_: float) -> None:
    """Operation polling without the 0.5 s pause between polls."""
