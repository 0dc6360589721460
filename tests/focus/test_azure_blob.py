"""Billing exports read from Azure Blob Storage (the local blob emulator) through providers.azure.storage."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace

import pytest

from agent.cli import _billing_reader
from providers.azure.client import AzureClients
from providers.focus import BillingError, read_billing
from providers.model import Cloud
from providers.sandbox.azure_storage import AzureBlobEmulator
from tests.azure.arm_support import StaticCredential
from tests.focus.conftest import DATA, billed, six

ACCOUNT = "costexports"
CONTAINER = "exports"
PREFIX = "focus/costagent/20240901-20240930/"


@pytest.fixture(scope="module")
def emulator() -> Iterator[AzureBlobEmulator]:
    with AzureBlobEmulator(page_size=2) as emu:
        sample = (DATA / "focus_sample.csv.gz").read_bytes()
        emu.add_blob(ACCOUNT, CONTAINER, PREFIX + "part_0_0001.csv.gz", sample, content_type="application/gzip")
        emu.add_blob(ACCOUNT, CONTAINER, PREFIX + "manifest.json", b'{"blobCount": 1}')
        emu.add_blob(ACCOUNT, CONTAINER, "amortized/actual.csv", (DATA / "EA_ActualCost_Small.csv").read_bytes())
        for name in ("paged/a/part_0_0001.csv.gz", "paged/b/part_0_0001.csv.gz"):
            emu.add_blob(ACCOUNT, CONTAINER, name, sample)
        emu.add_blob(ACCOUNT, CONTAINER, "paged/a/manifest.json", b"{}")
        emu.add_blob(ACCOUNT, CONTAINER, "paged/b/manifest.json", b"{}")
        emu.add_blob(ACCOUNT, "locked", PREFIX + "part_0_0001.csv.gz", sample)
        emu.deny(ACCOUNT, "locked")
        yield emu


def clients(emu: AzureBlobEmulator) -> AzureClients:
    return AzureClients(credential=StaticCredential(), ca_bundle=emu.ca_path, retry_backoff_factor=0.01)


def test_focus_sample_read_through_blob_storage_matches_the_known_sum(emulator):
    azure = clients(emulator)
    data = read_billing([emulator.blob_url(ACCOUNT, CONTAINER, PREFIX)], azure_clients=azure)
    assert data.sources == (emulator.blob_url(ACCOUNT, CONTAINER, PREFIX + "part_0_0001.csv.gz"),)  # no manifest
    assert six(billed(data)) == Decimal("20.520227")
    assert azure.calls["storage.Blobs.Get"] == 1


def test_a_glob_in_the_path_selects_blobs(emulator):
    data = read_billing([emulator.blob_url(ACCOUNT, CONTAINER, "*/actual.csv")], azure_clients=clients(emulator))
    assert data.sources == (emulator.blob_url(ACCOUNT, CONTAINER, "amortized/actual.csv"),)
    assert six(billed(data)) == Decimal("8.545008")


def test_a_listing_over_several_pages_reads_every_part(emulator):
    azure = clients(emulator)
    data = read_billing([emulator.blob_url(ACCOUNT, CONTAINER, "paged/")], azure_clients=azure)
    assert len(data.sources) == 2
    assert six(billed(data)) == Decimal("41.040453")  # 2 x 20.52022672899
    assert azure.calls["storage.Blobs.List"] == 2  # 4 blobs, 2 a page


def test_a_missing_container_is_a_billing_error_naming_the_url(emulator):
    url = emulator.blob_url(ACCOUNT, "no-such-container", "focus/")
    with pytest.raises(BillingError, match=url) as caught:
        read_billing([url], azure_clients=clients(emulator), strict=True)
    assert "ContainerNotFound" in str(caught.value)


def test_a_missing_data_role_is_a_billing_error_naming_the_role(emulator):
    with pytest.raises(BillingError, match="AuthorizationPermissionMismatch") as caught:
        read_billing([emulator.blob_url(ACCOUNT, "locked", PREFIX)], azure_clients=clients(emulator), strict=True)
    assert "Storage Blob Data Reader" in (caught.value.hint or "")


def test_a_sas_url_is_refused_without_repeating_the_signature(emulator):
    with pytest.raises(BillingError, match="SAS") as caught:
        read_billing([emulator.blob_url(ACCOUNT, CONTAINER, PREFIX) + "?sv=2022-11-02&sig=SECRET"],
                     azure_clients=clients(emulator), strict=True)
    assert "SECRET" not in caught.value.one_line()


def test_the_cli_reader_uses_the_azure_providers_clients(emulator):
    azure = clients(emulator)
    read = _billing_reader([SimpleNamespace(cloud=Cloud.AZURE, clients=azure)])
    data = read([emulator.blob_url(ACCOUNT, CONTAINER, PREFIX)])
    assert six(billed(data)) == Decimal("20.520227")
    assert azure.calls["storage.Blobs.Get"] == 1
