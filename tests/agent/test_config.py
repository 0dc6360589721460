"""The configuration file and the cloud/region routing built on it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.clouds import cloud_of_region, default_clouds, split_regions
from agent.config import Config, load
from providers.errors import ConfigurationError
from providers.model import Cloud


def write(tmp_path, text):
    path = tmp_path / "costagent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_file_is_read(tmp_path):
    config = load(write(tmp_path, """
[aws]
profile = "ro"
regions = ["us-east-1"]
[gcp]
projects = ["ml-prod"]
billing_table = "b.ds.gcp_billing_export_v1_X"
[gcp.endpoints]
compute = "http://127.0.0.1:1"
monitoring = "127.0.0.1:2"
[azure]
subscriptions = ["sub-1"]
base_url = "https://127.0.0.1:3"
ca_bundle = "ca.pem"
"""), env={})
    assert (config.aws.profile, config.aws.regions) == ("ro", ("us-east-1",))
    assert config.gcp.endpoints == {"compute": "http://127.0.0.1:1", "monitoring": "127.0.0.1:2"}
    assert (config.gcp.projects, config.gcp.billing_table) == (("ml-prod",), "b.ds.gcp_billing_export_v1_X")
    assert (config.azure.subscriptions, config.azure.base_url, config.azure.ca_bundle) == (
        ("sub-1",), "https://127.0.0.1:3", "ca.pem")


def test_no_file_means_defaults():
    config = load(None, env={})
    assert replace(config, state_url="") == Config()
    assert config.state_url.startswith("sqlite:///") and config.state_url.endswith("/costagent/state.db")


def test_file_named_by_the_environment(tmp_path):
    path = write(tmp_path, '[gcp]\nprojects = ["p"]\n')
    assert load(None, env={"COSTAGENT_CONFIG": str(path)}).gcp.projects == ("p",)


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, '[azure]\nbase_url = "https://a"\n[gcp.endpoints]\ncompute = "http://a"\n')
    config = load(path, env={"COSTAGENT_AZURE_BASE_URL": "https://b", "COSTAGENT_GCP_ENDPOINT_COMPUTE": "http://b",
                             "COSTAGENT_GCP_PROJECTS": "p1, p2"})
    assert (config.azure.base_url, config.gcp.endpoints["compute"], config.gcp.projects) == (
        "https://b", "http://b", ("p1", "p2"))


@pytest.mark.parametrize(("text", "fragment"), [
    ("[gcp\n", "not valid TOML"),
    ("[gpc]\n", "unknown section [gpc]"),
    ("[gcp]\nproject = ['x']\n", "unknown key gcp.project"),
    ("[gcp.endpoints]\ncomptue = 'http://x'\n", "unknown service gcp.endpoints.comptue"),
    ("[azure]\nsubscriptions = 5\n", "azure.subscriptions must be a list of strings"),
    ("[azure]\nbase_url = ''\n", "azure.base_url must be a non-empty string"),
])
def test_bad_files_name_the_file_and_the_key(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as err:
        load(path, env={})
    assert fragment in str(err.value) and str(path) in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigurationError, match="no such file"):
        load(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(("region", "cloud"), [
    ("us-east-1", Cloud.AWS), ("us-gov-west-1", Cloud.AWS), ("ap-southeast-2", Cloud.AWS),
    ("us-central1", Cloud.GCP), ("europe-west4", Cloud.GCP), ("eastus", Cloud.AZURE), ("westeurope", Cloud.AZURE),
    ("eastus2", Cloud.AZURE), ("US East", None),
])
def test_region_names_tell_their_cloud(region, cloud):
    assert cloud_of_region(region) == cloud


def test_regions_are_split_per_cloud():
    split = split_regions(["us-east-1", "us-central1", "eastus", "us-east-1"], [Cloud.AWS, Cloud.GCP, Cloud.AZURE])
    assert split == {Cloud.AWS: ("us-east-1",), Cloud.GCP: ("us-central1",), Cloud.AZURE: ("eastus",)}


def test_region_of_a_cloud_not_audited_is_refused():
    with pytest.raises(ConfigurationError, match="'eastus' is not a region of the audited cloud"):
        split_regions(["eastus"], [Cloud.AWS])


def test_default_clouds_follow_the_config_sections(tmp_path):
    assert default_clouds(Config(), demo=False) == (Cloud.AWS,)
    assert default_clouds(Config(), demo=True) == (Cloud.AWS, Cloud.GCP, Cloud.AZURE)
    config = load(write(tmp_path, '[gcp]\nprojects = ["p"]\n[azure]\nsubscriptions = ["s"]\n'), env={})
    assert default_clouds(config, demo=False) == (Cloud.GCP, Cloud.AZURE)
