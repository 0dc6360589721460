"""Billing exports read from Cloud Storage (the local GCS emulator) through providers.gcp.storage and GcpClients."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from google.auth.credentials import AnonymousCredentials

from providers.focus import BillingError, read_billing
from providers.gcp.client import GcpClients
from providers.sandbox.gcp_storage import GcsEmulator
from tests.focus.conftest import DATA, billed, six

BUCKET = "billing-exports"
PREFIX = "focus/2024-09/"


@pytest.fixture(scope="module")
def emulator() -> Iterator[GcsEmulator]:
    with GcsEmulator() as emu:
        emu.add_object(BUCKET, PREFIX + "part-00001.csv.gz", (DATA / "focus_sample.csv.gz").read_bytes())
        emu.add_object(BUCKET, PREFIX + "manifest.json", b'{"files": 1}')
        yield emu


def clients(emu: GcsEmulator) -> GcpClients:
    return GcpClients(projects=["billing-prj"], endpoints={"storage": emu.url}, credentials=AnonymousCredentials(),
                      retry_initial=0.01, retry_timeout=1)


def test_focus_sample_read_through_gcs_matches_the_known_sum(emulator):
    gcp = clients(emulator)
    data = read_billing([f"gs://{BUCKET}/{PREFIX}"], gcp_clients=gcp)
    assert data.sources == (f"gs://{BUCKET}/{PREFIX}part-00001.csv.gz",)  # the manifest is not billing data
    assert six(billed(data)) == Decimal("20.520227")
    assert gcp.calls["storage.Objects.Get"] == 1


def test_a_missing_prefix_is_a_billing_error_naming_the_url(emulator):
    with pytest.raises(BillingError, match=f"gs://{BUCKET}/nothing/"):
        read_billing([f"gs://{BUCKET}/nothing/"], gcp_clients=clients(emulator), strict=True)
