"""``costagent permissions aws|gcp|azure``: prints the read-only and actuator documents exactly as in infra/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import main

ROOT = Path(__file__).resolve().parents[2]
FILES = {"aws": ("infra/aws/audit-readonly-policy.json", "infra/aws/actuator-policy.json"),
         "gcp": ("infra/gcp/audit-readonly-role.yaml", "infra/gcp/actuator-role.yaml"),
         "azure": ("infra/azure/audit-readonly-role.json", "infra/azure/actuator-role.json")}
CLOUDS = sorted(FILES)


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, ["permissions", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _file(cloud: str, which: int) -> str:
    return (ROOT / FILES[cloud][which]).read_text()


@pytest.mark.parametrize("cloud", CLOUDS)
def test_role_read_prints_the_read_only_file(cloud: str) -> None:
    assert _run(cloud, "--role", "read") == _file(cloud, 0)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_role_act_prints_the_actuator_file(cloud: str) -> None:
    assert _run(cloud, "--role", "act") == _file(cloud, 1)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_both_prints_each_file_under_its_name(cloud: str) -> None:
    out = _run(cloud)
    marker = "#" if cloud == "gcp" else "//"
    read, act = FILES[cloud]
    assert out == f"{marker} {read}\n{_file(cloud, 0)}{marker} {act}\n{_file(cloud, 1)}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_json_output_parses_into_both_documents(cloud: str) -> None:
    doc = json.loads(_run(cloud, "--output", "json"))
    assert doc["cloud"] == cloud and set(doc) == {"cloud", "read", "act"}
    if cloud == "gcp":  # the GCP role is YAML: carried as its text
        assert (doc["read"], doc["act"]) == (_file(cloud, 0), _file(cloud, 1))
    else:
        assert (doc["read"], doc["act"]) == (json.loads(_file(cloud, 0)), json.loads(_file(cloud, 1)))


@pytest.mark.parametrize(("role", "keys"), [("read", {"cloud", "read"}), ("act", {"cloud", "act"})])
def test_json_output_of_one_role_has_only_that_document(role: str, keys: set[str]) -> None:
    doc = json.loads(_run("aws", "--role", role, "--output", "json"))
    assert set(doc) == keys
    assert doc[role] == json.loads(_file("aws", 0 if role == "read" else 1))


def test_the_aws_actuator_policy_never_terminates_or_deletes() -> None:
    doc = json.loads(_run("aws", "--role", "act", "--output", "json"))
    actions = [a for statement in doc["act"]["Statement"] for a in statement["Action"]]
    assert "ec2:StopInstances" in actions
    assert not [a for a in actions if "Terminate" in a or "Delete" in a]


def test_an_unknown_cloud_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["permissions", "oracle"])
    assert result.exit_code == 2 and "oracle" in result.output
