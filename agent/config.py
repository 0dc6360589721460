"""The configuration file (``costagent.yaml`` or TOML): which accounts, projects and subscriptions to audit, where
the APIs are, the apply policy and the state database. YAML and TOML carry the same sections and keys
(``agent/config_source.py`` reads either, with each key's line for error messages).

``costagent --config FILE`` or ``COSTAGENT_CONFIG=FILE``; every key is optional (see
docs/configuration.md). Credentials never go here: each cloud's standard chain supplies them.

    [aws]
    profile = "prod-readonly"
    regions = ["us-east-1", "us-west-2"]

    [gcp]
    projects = ["ml-prod", "ml-research"]      # default: every project the credentials can see
    regions = ["us-central1"]                  # default: every region holding instances
    billing_table = "billing-prj.billing.gcp_billing_export_resource_v1_0123AB_4567CD_89EF01"
    [gcp.endpoints]                            # per service; a local emulator, a proxy, Private Service Connect
    compute = "http://127.0.0.1:8085"
    monitoring = "127.0.0.1:8086"              # gRPC: host:port (plain text for loopback)

    [azure]
    subscriptions = ["00000000-0000-0000-0000-000000000000"]  # default: every enabled subscription visible
    regions = ["eastus"]                       # default: every location holding VMs
    base_url = "https://127.0.0.1:8443"        # Azure Resource Manager (default https://management.azure.com)
    ca_bundle = "/etc/costagent/emulator-ca.pem"  # CA to trust for base_url (else REQUESTS_CA_BUNDLE / system)
    metrics_endpoint = "https://{region}.metrics.monitor.azure.com"  # Azure Monitor's metrics data plane
                                               # (metrics:getBatch; {region} = the VMs' location; "off": per-VM
                                               # reads only). Default: this one with the public base_url, the
                                               # azure.us/azure.cn one with a sovereign base_url, else none

The other sections have their own modules: ``apply`` and ``state`` (agent/apply_config.py); ``report``,
``channels``, ``schedules`` and ``daemon`` (agent/daemon_config.py); ``audit`` and ``recommenders``
(agent/audit_config.py: the audit window and the recommenders' thresholds).

A few keys have environment overrides, for containers: ``COSTAGENT_GCP_PROJECTS`` (comma-separated),
``COSTAGENT_GCP_ENDPOINT_<SERVICE>``, ``COSTAGENT_GCP_BILLING_TABLE``, ``COSTAGENT_AZURE_SUBSCRIPTIONS``,
``COSTAGENT_AZURE_BASE_URL``, ``COSTAGENT_AZURE_CA_BUNDLE``, ``COSTAGENT_AZURE_METRICS_ENDPOINT``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.apply_config import (
    APPLY_KEYS,
    STATE_KEYS,
    ApplySettings,
    apply_settings,
    state_url,
)
from agent.audit_config import AUDIT_KEYS, RECOMMENDER_KEYS, AuditSettings, audit_settings
from agent.config_source import Source, with_line
from agent.config_source import read as read_source
from agent.daemon_config import (
    DAEMON_KEYS,
    JOBS,
    REPORT_KEYS,
    Channel,
    DaemonSettings,
    ReportSettings,
    channels,
    daemon_settings,
    report_settings,
)
from providers.errors import ConfigurationError

ENV_FILE = "COSTAGENT_CONFIG"
GCP_SERVICES = ("compute", "monitoring", "bigquery", "cloudbilling", "cloudresourcemanager", "storage")


@dataclass(frozen=True)
class AwsConfig:
    profile: str | None = None
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class GcpConfig:
    projects: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    endpoints: Mapping[str, str] = field(default_factory=dict)
    billing_table: str | None = None


@dataclass(frozen=True)
class AzureConfig:
    subscriptions: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    base_url: str | None = None
    ca_bundle: str | None = None
    metrics_endpoint: str | None = None


@dataclass(frozen=True)
class Config:
    aws: AwsConfig = field(default_factory=AwsConfig)
    gcp: GcpConfig = field(default_factory=GcpConfig)
    azure: AzureConfig = field(default_factory=AzureConfig)
    source: str | None = None  # the file read, for messages
    apply: ApplySettings = field(default_factory=ApplySettings)  # the guards' policy ([apply])
    state_url: str = ""  # the journal's database ([state] url, COSTAGENT_STATE_URL); "" before load()
    report: ReportSettings = field(default_factory=ReportSettings)  # digests: routing tags, noise controls
    channels: tuple[Channel, ...] = ()  # where digests go
    daemon: DaemonSettings = field(default_factory=DaemonSettings)  # schedules, listen address
    audit: AuditSettings = field(default_factory=AuditSettings)  # lookback, period, billing, recommenders' settings


_KEYS: dict[str, set[str]] = {
    "aws": {"profile", "regions"},
    "gcp": {"projects", "regions", "endpoints", "billing_table"},
    "azure": {"subscriptions", "regions", "base_url", "ca_bundle", "metrics_endpoint"},
    "apply": APPLY_KEYS,
    "state": STATE_KEYS,
    "report": REPORT_KEYS,
    "schedules": set(JOBS) | {"timezone"},
    "daemon": DAEMON_KEYS,
    "channels": set(),  # a list, checked by daemon_config.channels
    "audit": AUDIT_KEYS,
    "recommenders": RECOMMENDER_KEYS,
}


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (else ``$COSTAGENT_CONFIG``; else defaults), then apply environment overrides.

    Raises ``ConfigurationError`` naming the file and key for anything it cannot use.
    """
    env = os.environ if env is None else env
    chosen = path or env.get(ENV_FILE) or None
    source = read_source(Path(chosen)) if chosen else Source({})
    try:
        return _validated(source.data, str(chosen) if chosen else None, env)
    except ConfigurationError as exc:
        raise with_line(exc, source) from None


def _validated(data: dict[str, Any], chosen: str | None, env: Mapping[str, str]) -> Config:
    where = chosen or "configuration"
    for section in data:
        if section not in _KEYS:
            raise ConfigurationError(f"config {where}: unknown section [{section}]",
                                     hint=f"sections: {', '.join(f'[{s}]' for s in _KEYS)}")
        if section == "channels":
            continue
        if not isinstance(data[section], dict):
            raise ConfigurationError(f"config {where}: [{section}] must be a table (a mapping)")
        unknown = set(data[section]) - _KEYS[section]
        if unknown:
            raise ConfigurationError(f"config {where}: unknown key {section}.{sorted(unknown)[0]}",
                                     hint=f"[{section}] keys: {', '.join(sorted(_KEYS[section]))}")
    aws, gcp, azure = data.get("aws", {}), data.get("gcp", {}), data.get("azure", {})
    endpoints = dict(_table(gcp, "endpoints", where, "gcp"))
    for service, url in endpoints.items():
        if service not in GCP_SERVICES:
            raise ConfigurationError(f"config {where}: unknown service gcp.endpoints.{service}",
                                     hint=f"services: {', '.join(GCP_SERVICES)}")
        if not isinstance(url, str) or not url:
            raise ConfigurationError(f"config {where}: gcp.endpoints.{service} must be a non-empty string")
    for service in GCP_SERVICES:
        override = env.get(f"COSTAGENT_GCP_ENDPOINT_{service.upper()}")
        if override:
            endpoints[service] = override
    return Config(
        aws=AwsConfig(profile=_str(aws, "profile", where, "aws"), regions=_list(aws, "regions", where, "aws")),
        gcp=GcpConfig(
            projects=_env_list(env, "COSTAGENT_GCP_PROJECTS") or _list(gcp, "projects", where, "gcp"),
            regions=_list(gcp, "regions", where, "gcp"),
            endpoints=endpoints,
            billing_table=env.get("COSTAGENT_GCP_BILLING_TABLE") or _str(gcp, "billing_table", where, "gcp"),
        ),
        azure=AzureConfig(
            subscriptions=_env_list(env, "COSTAGENT_AZURE_SUBSCRIPTIONS") or _list(azure, "subscriptions", where,
                                                                                   "azure"),
            regions=_list(azure, "regions", where, "azure"),
            base_url=env.get("COSTAGENT_AZURE_BASE_URL") or _str(azure, "base_url", where, "azure"),
            ca_bundle=env.get("COSTAGENT_AZURE_CA_BUNDLE") or _str(azure, "ca_bundle", where, "azure"),
            metrics_endpoint=(env.get("COSTAGENT_AZURE_METRICS_ENDPOINT")
                              or _str(azure, "metrics_endpoint", where, "azure")),
        ),
        source=str(chosen) if chosen else None,
        apply=apply_settings(data.get("apply", {}), where),
        state_url=state_url(data.get("state", {}), where, env),
        report=report_settings(data.get("report", {}), where),
        channels=channels(data.get("channels", []), where),
        daemon=daemon_settings(data.get("schedules", {}), data.get("daemon", {}), where),
        audit=audit_settings(data.get("audit", {}), data.get("recommenders", {}), where),
    )


def _str(section: Mapping[str, Any], key: str, where: str, name: str) -> str | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"config {where}: {name}.{key} must be a non-empty string")
    return value.strip()


def _list(section: Mapping[str, Any], key: str, where: str, name: str) -> tuple[str, ...]:
    value = section.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigurationError(f"config {where}: {name}.{key} must be a list of strings")
    return tuple(v.strip() for v in value)


def _table(section: Mapping[str, Any], key: str, where: str, name: str) -> Mapping[str, Any]:
    value = section.get(key, {})
    if not isinstance(value, dict):
        raise ConfigurationError(f"config {where}: {name}.{key} must be a table")
    return value


def _env_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in env.get(name, "").split(",") if v.strip())
