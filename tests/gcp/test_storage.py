"""gs:// billing files: the real google-cloud-storage client over HTTP to the local GCS emulator."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.errors import AuthError, ConfigurationError, NotFound, ProviderError
from providers.gcp import storage
from providers.gcp.client import GcpClients
from providers.sandbox.gcp_storage import GcsEmulator

BUCKET = "billing-exports"
FILES = {f"focus/2026-03/part-{i}.csv": f"BilledCost\n{i}.5\n".encode() for i in range(5)}


@pytest.fixture
def gcs() -> Iterator[GcsEmulator]:
    with GcsEmulator(page_size=2) as emu:
        for name, data in FILES.items():
            emu.add_object(BUCKET, name, data, content_type="text/csv")
        emu.add_object(BUCKET, "focus/2026-02/part-0.csv", b"BilledCost\n9\n")
        emu.add_object(BUCKET, "other/readme.txt", b"not billing")
        yield emu


@pytest.fixture
def clients() -> GcpClients:
    return GcpClients(projects=["p"], retry_initial=0.01, retry_timeout=2)


def _sdk(gcs: GcsEmulator) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs_sdk

    return gcs_sdk.Client(project="p", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs.url})


def test_listing_a_prefix_follows_pages(gcs: GcsEmulator, clients: GcpClients) -> None:
    found = storage.list_objects(clients, f"gs://{BUCKET}/focus/2026-03/", storage_client=_sdk(gcs))

    assert [o.name for o in found] == sorted(FILES)
    assert [o.size for o in found] == [len(FILES[n]) for n in sorted(FILES)]
    assert clients.calls == {"storage.Objects.List": 3}  # 5 objects, 2 a page
    assert gcs.count("/o?") == 3


def test_download_writes_every_object_under_the_folder(gcs: GcsEmulator, clients: GcpClients, tmp_path: Path) -> None:
    paths = storage.download(clients, f"gs://{BUCKET}/focus/2026-03/", tmp_path, storage_client=_sdk(gcs))

    assert paths == [tmp_path / BUCKET / name for name in sorted(FILES)]
    assert {p.relative_to(tmp_path / BUCKET).as_posix(): p.read_bytes() for p in paths} == FILES
    assert clients.calls["storage.Objects.Get"] == len(FILES)
    assert gcs.count("GET /download/storage/v1/b/billing-exports/o/") == len(FILES)


def test_gzip_objects_are_kept_as_stored(gcs: GcsEmulator, clients: GcpClients, tmp_path: Path) -> None:
    data = gzip.compress(b"BilledCost\n1\n")
    gcs.add_object(BUCKET, "gz/export.csv.gz", data, content_type="application/gzip")

    [path] = storage.download(clients, f"gs://{BUCKET}/gz/export.csv.gz", tmp_path, storage_client=_sdk(gcs))

    assert path.name == "export.csv.gz" and path.read_bytes() == data


def test_glob_matches_names(gcs: GcsEmulator, clients: GcpClients) -> None:
    found = storage.list_objects(clients, f"gs://{BUCKET}/focus/*/part-0.csv", storage_client=_sdk(gcs))

    assert [o.url for o in found] == [f"gs://{BUCKET}/focus/2026-02/part-0.csv",
                                      f"gs://{BUCKET}/focus/2026-03/part-0.csv"]


def test_suffixes_filter_a_prefix(gcs: GcsEmulator, clients: GcpClients) -> None:
    found = storage.list_objects(clients, f"gs://{BUCKET}/", (".csv",), storage_client=_sdk(gcs))

    assert "other/readme.txt" not in {o.name for o in found} and len(found) == len(FILES) + 1


def test_empty_prefix_is_not_found(gcs: GcsEmulator, clients: GcpClients) -> None:
    with pytest.raises(NotFound, match="nothing found at gs://billing-exports/nope/"):
        storage.list_objects(clients, f"gs://{BUCKET}/nope/", storage_client=_sdk(gcs))


def test_missing_bucket_is_not_found(gcs: GcsEmulator, clients: GcpClients) -> None:
    with pytest.raises(NotFound, match="storage.Objects.List"):
        storage.list_objects(clients, "gs://no-such-bucket/x/", storage_client=_sdk(gcs))


def test_denied_bucket_is_auth_error(gcs: GcsEmulator, clients: GcpClients) -> None:
    gcs.deny(BUCKET)

    with pytest.raises(AuthError, match="storage.objects.list"):
        storage.list_objects(clients, f"gs://{BUCKET}/focus/", storage_client=_sdk(gcs))


def test_unavailable_list_and_download_are_retried(gcs: GcsEmulator, clients: GcpClients, tmp_path: Path) -> None:
    sdk = _sdk(gcs)
    [obj] = storage.list_objects(clients, f"gs://{BUCKET}/focus/2026-02/", storage_client=sdk)
    gcs.fail_next(503, count=2)

    path = storage.download_object(clients, obj, tmp_path, storage_client=sdk)
    gcs.fail_next(503)
    again = storage.list_objects(clients, f"gs://{BUCKET}/focus/2026-02/", storage_client=sdk)

    assert path.read_bytes() == b"BilledCost\n9\n" and again == [obj]
    assert gcs.count("/download/") == 3 and gcs.count("/o?") == 3


def test_object_names_that_leave_the_folder_are_refused(gcs: GcsEmulator, clients: GcpClients,
                                                       tmp_path: Path) -> None:
    gcs.add_object(BUCKET, "evil/../../escape.csv", b"x")

    with pytest.raises(ProviderError, match="refusing"):
        storage.download(clients, f"gs://{BUCKET}/evil/", tmp_path / "in", storage_client=_sdk(gcs))
    assert not (tmp_path / "escape.csv").exists()


def test_a_failed_download_leaves_no_partial_file(gcs: GcsEmulator, clients: GcpClients, tmp_path: Path) -> None:
    obj = storage.GcsObject(BUCKET, "focus/gone.csv", 1)

    with pytest.raises(NotFound):
        storage.download_object(clients, obj, tmp_path, storage_client=_sdk(gcs))
    assert not (tmp_path / BUCKET / "focus" / "gone.csv").exists()


def test_without_a_storage_client_it_says_what_is_missing(clients: GcpClients) -> None:
    if hasattr(clients, "storage"):
        pytest.skip("GcpClients builds its own storage client")
    with pytest.raises(ConfigurationError, match="Cloud Storage client"):
        storage.list_objects(clients, f"gs://{BUCKET}/x")


@pytest.mark.parametrize("url", ["s3://b/x", "gs://", "gs:///x"])
def test_bad_urls_are_configuration_errors(url: str, clients: GcpClients) -> None:
    with pytest.raises(ConfigurationError):
        storage.parse_url(url)


def test_emulator_lists_with_delimiter_and_match_glob(gcs: GcsEmulator) -> None:
    sdk = _sdk(gcs)

    folders = sdk.list_blobs(BUCKET, prefix="focus/", delimiter="/")
    list(folders)
    globbed = [b.name for b in sdk.list_blobs(BUCKET, match_glob="**/part-[01].csv")]

    assert sorted(folders.prefixes) == ["focus/2026-02/", "focus/2026-03/"]
    assert globbed == ["focus/2026-02/part-0.csv", "focus/2026-03/part-0.csv", "focus/2026-03/part-1.csv"]
