"""providers.azure.storage against the local Blob Storage emulator: URL forms, listing, downloads, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceModifiedError

from providers.azure import storage
from providers.azure.client import AzureClients
from providers.errors import AuthError, ConfigurationError, NotFound, ProviderError
from providers.sandbox.azure_storage import AzureBlobEmulator
from tests.azure.arm_support import StaticCredential

ACCOUNT = "costexports"


@pytest.fixture
def emu() -> Iterator[AzureBlobEmulator]:
    with AzureBlobEmulator(page_size=2) as server:
        yield server


def clients(emu: AzureBlobEmulator, **kwargs: Any) -> AzureClients:
    return AzureClients(credential=kwargs.pop("credential", StaticCredential()), ca_bundle=emu.ca_path,
                        retry_backoff_factor=0.01, **kwargs)


# -- URL forms -------------------------------------------------------------------------------------
def test_the_portal_url_names_account_container_and_prefix():
    where = storage.parse_url("https://acme.blob.core.windows.net/exports/focus/2024-09/")
    assert (where.account_url, where.container, where.path) == ("https://acme.blob.core.windows.net", "exports",
                                                               "focus/2024-09/")
    assert where.base == "https://acme.blob.core.windows.net/exports/"


def test_a_sovereign_cloud_keeps_its_endpoint_suffix():
    where = storage.parse_url("https://acme.blob.core.usgovcloudapi.net/exports/x.csv")
    assert where.account_url == "https://acme.blob.core.usgovcloudapi.net"


def test_abfss_reads_through_the_accounts_blob_endpoint_and_keeps_its_spelling():
    where = storage.parse_url("abfss://exports@acme.dfs.core.windows.net/focus/part_0.parquet")
    assert (where.account_url, where.container, where.path) == ("https://acme.blob.core.windows.net", "exports",
                                                               "focus/part_0.parquet")
    assert where.base == "abfss://exports@acme.dfs.core.windows.net/"


def test_an_ip_host_is_path_style_with_the_account_first():
    where = storage.parse_url("https://127.0.0.1:10000/devstoreaccount1/exports/focus/")
    assert (where.account_url, where.container, where.path) == ("https://127.0.0.1:10000/devstoreaccount1",
                                                               "exports", "focus/")


def test_plain_http_is_refused():
    with pytest.raises(ConfigurationError, match="HTTPS"):
        storage.parse_url("http://acme.blob.core.windows.net/exports/x.csv")


def test_a_sas_token_is_refused_and_not_repeated():
    with pytest.raises(ConfigurationError, match="SAS") as caught:
        storage.parse_url("https://acme.blob.core.windows.net/exports/x.csv?sv=2022-11-02&sig=SECRET")
    assert "SECRET" not in caught.value.one_line()


def test_a_url_without_container_is_refused():
    with pytest.raises(ConfigurationError, match="no container"):
        storage.parse_url("https://acme.blob.core.windows.net/")


# -- listing ---------------------------------------------------------------------------------------
def test_listing_follows_next_marker_and_counts_each_page(emu):
    for i in range(5):
        emu.add_blob(ACCOUNT, "exports", f"focus/part_{i}.csv", b"x")
    azure = clients(emu)
    found = storage.list_objects(azure, emu.blob_url(ACCOUNT, "exports", "focus/"))
    assert [o.name for o in found] == [f"focus/part_{i}.csv" for i in range(5)]
    assert azure.calls["storage.Blobs.List"] == 3 == emu.count("comp=list")


def test_a_glob_crosses_folders_and_suffixes_filter_a_prefix(emu):
    for name in ("focus/2024-09/part_0.csv", "focus/2024-10/part_0.csv", "focus/2024-10/manifest.json",
                 "other/part_0.csv"):
        emu.add_blob(ACCOUNT, "exports", name, b"x")
    azure = clients(emu)
    globbed = storage.list_objects(azure, emu.blob_url(ACCOUNT, "exports", "focus/*.csv"))
    assert [o.name for o in globbed] == ["focus/2024-09/part_0.csv", "focus/2024-10/part_0.csv"]
    prefixed = storage.list_objects(azure, emu.blob_url(ACCOUNT, "exports", "focus/2024-10/"), (".csv",))
    assert [o.name for o in prefixed] == ["focus/2024-10/part_0.csv"]


def test_data_lake_directory_entries_are_left_out(emu):
    emu.add_blob(ACCOUNT, "exports", "focus", b"", metadata={"hdi_isfolder": "true"})
    emu.add_blob(ACCOUNT, "exports", "focus/part_0.csv", b"x")
    found = storage.list_objects(clients(emu), emu.blob_url(ACCOUNT, "exports", "focus*"))
    assert [o.name for o in found] == ["focus/part_0.csv"]


def test_an_empty_prefix_is_not_found(emu):
    emu.add_container(ACCOUNT, "exports")
    with pytest.raises(NotFound, match="nothing found"):
        storage.list_objects(clients(emu), emu.blob_url(ACCOUNT, "exports", "focus/"))


# -- downloads -------------------------------------------------------------------------------------
def test_a_large_blob_downloads_in_ranges_to_account_container_name(emu, tmp_path):
    data = bytes(range(256)) * (9 * 4096 + 7)  # ~9 MiB: three 4 MiB ranges
    emu.add_blob(ACCOUNT, "exports", "focus/part_0.parquet", data)
    azure = clients(emu)
    [obj] = storage.list_objects(azure, emu.blob_url(ACCOUNT, "exports", "focus/"))
    path = storage.download_object(azure, obj, tmp_path)
    assert path == tmp_path / ACCOUNT / "exports" / "focus" / "part_0.parquet"
    assert path.read_bytes() == data
    assert azure.calls["storage.Blobs.Get"] == 1 and emu.count("GET /costexports/exports/focus/part_0.parquet") == 3


def test_an_empty_blob_downloads_as_an_empty_file(emu, tmp_path):
    emu.add_blob(ACCOUNT, "exports", "empty.csv", b"")
    azure = clients(emu)
    [obj] = storage.list_objects(azure, emu.blob_url(ACCOUNT, "exports", "empty.csv"))
    assert storage.download_object(azure, obj, tmp_path).read_bytes() == b""


def test_a_blob_replaced_during_a_download_fails_on_its_etag(emu, tmp_path):
    emu.add_blob(ACCOUNT, "exports", "big.csv", b"a" * (5 << 20))
    blob = clients(emu).blob_service(emu.account_url(ACCOUNT)).get_blob_client("exports", "big.csv")
    downloader = blob.download_blob(max_concurrency=1)  # the first 4 MiB range is read here
    emu.add_blob(ACCOUNT, "exports", "big.csv", b"b" * (5 << 20))
    with pytest.raises(ResourceModifiedError, match="ConditionNotMet"), open(tmp_path / "out", "wb") as out:
        downloader.readinto(out)


def test_a_name_leaving_the_folder_is_refused(tmp_path):
    obj = storage.BlobObject("https://acme.blob.core.windows.net", "exports", "../../etc/passwd", 1,
                             "https://acme.blob.core.windows.net/exports/")
    with pytest.raises(ProviderError, match="leaves the folder"):
        storage.download_object(AzureClients(credential=StaticCredential()), obj, tmp_path)


# -- credentials and errors ------------------------------------------------------------------------
class ScopeRecorder(StaticCredential):
    def __init__(self) -> None:
        super().__init__("storage-token")
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


def test_the_credential_is_asked_for_a_storage_token(tmp_path):
    recorder = ScopeRecorder()
    with AzureBlobEmulator(token="storage-token") as emu:
        emu.add_blob(ACCOUNT, "exports", "x.csv", b"a,b\n")
        storage.download(clients(emu, credential=recorder), emu.blob_url(ACCOUNT, "exports", "x.csv"), tmp_path)
    assert recorder.scopes == ["https://storage.azure.com/.default"]


def test_a_token_the_service_rejects_is_an_auth_error():
    with AzureBlobEmulator(token="expected") as strict:
        strict.add_blob(ACCOUNT, "exports", "x.csv", b"a")
        with pytest.raises(AuthError, match="InvalidAuthenticationInfo") as caught:
            storage.list_objects(clients(strict), strict.blob_url(ACCOUNT, "exports", ""))
    assert "DefaultAzureCredential" in (caught.value.hint or "")


def test_a_missing_data_role_is_an_auth_error_naming_the_role(emu):
    emu.add_blob(ACCOUNT, "exports", "x.csv", b"a")
    emu.deny(ACCOUNT, "exports")
    with pytest.raises(AuthError) as caught:
        storage.list_objects(clients(emu), emu.blob_url(ACCOUNT, "exports", ""))
    assert caught.value.code == "AuthorizationPermissionMismatch" and caught.value.status == 403
    assert "Storage Blob Data Reader" in (caught.value.hint or "")


def test_a_firewall_refusal_points_at_the_network_rules(emu):
    emu.add_blob(ACCOUNT, "exports", "x.csv", b"a")
    emu.deny(ACCOUNT, "exports", code="AuthorizationFailure")
    with pytest.raises(AuthError) as caught:
        storage.list_objects(clients(emu), emu.blob_url(ACCOUNT, "exports", ""))
    assert "firewall" in (caught.value.hint or "")


def test_a_missing_container_is_not_found_with_the_service_code(emu):
    with pytest.raises(NotFound, match=f"127.0.0.1:\\d+/{ACCOUNT}") as caught:
        storage.list_objects(clients(emu), emu.blob_url(ACCOUNT, "nope", "x/"))
    assert caught.value.code == "ContainerNotFound"


def test_a_busy_server_is_retried(emu):
    emu.add_blob(ACCOUNT, "exports", "x.csv", b"a")
    emu.fail_next(503)
    found = storage.list_objects(clients(emu), emu.blob_url(ACCOUNT, "exports", ""))
    assert [o.name for o in found] == ["x.csv"] and emu.count("comp=list") == 2


def test_errors_answer_in_the_services_xml_shape(emu):
    import requests

    response = requests.get(f"{emu.url}/{ACCOUNT}/nope?restype=container&comp=list", verify=emu.ca_path,
                            headers={"Authorization": "Bearer t", "x-ms-version": "2025-11-05"}, timeout=5)
    assert response.status_code == 404 and response.headers["x-ms-error-code"] == "ContainerNotFound"
    assert response.text.startswith('<?xml version="1.0" encoding="utf-8"?><Error><Code>ContainerNotFound</Code>')


def test_a_download_of_a_vanished_blob_is_not_found(emu, tmp_path):
    emu.add_blob(ACCOUNT, "exports", "x.csv", b"a")
    azure = clients(emu)
    [obj] = storage.list_objects(azure, emu.blob_url(ACCOUNT, "exports", ""))
    emu.delete_blob(ACCOUNT, "exports", "x.csv")
    with pytest.raises(NotFound) as caught:
        storage.download_object(azure, obj, tmp_path)
    assert caught.value.code == "BlobNotFound" and not any(Path(tmp_path).rglob("x.csv"))
