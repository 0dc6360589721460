"""``costagent config validate``: check a configuration file without touching any cloud.

Prints what the file configures (clouds, accounts, regions, the apply policy, the state database with its
password hidden) or one line naming the key and its line; exit 0 or 2. Secrets are never printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from agent.audit import EXIT_USAGE
from providers.errors import ConfigurationError


def summary(config: Any) -> dict[str, Any]:
    from agent.journal import safe_url

    policy = config.apply.policy
    return {
        "file": config.source,
        "aws": {"profile": config.aws.profile, "regions": list(config.aws.regions)},
        "gcp": {"projects": list(config.gcp.projects), "regions": list(config.gcp.regions),
                "endpoints": sorted(config.gcp.endpoints), "billing_table": config.gcp.billing_table},
        "azure": {"subscriptions": list(config.azure.subscriptions), "regions": list(config.azure.regions),
                  "base_url": config.azure.base_url},
        "apply": {"mode": policy.mode.label, "modes": {k: v.label for k, v in policy.per_recommender.items()},
                  "accounts": sorted(policy.accounts), "regions": sorted(policy.regions),
                  "required_tags": dict(policy.required_tags), "windows": [str(w) for w in policy.windows],
                  "grace_hours": policy.grace_hours, "cooldown_hours": policy.cooldown.total_seconds() / 3600,
                  "max_actions_per_run": policy.max_actions_per_run,
                  "max_fleet_percent": None if policy.max_fleet_fraction is None else policy.max_fleet_fraction * 100,
                  "approval_required": sorted(policy.approval_required_kinds),
                  "freshness_minutes": config.apply.freshness.total_seconds() / 60},
        "state": {"url": safe_url(config.state_url)},
        "report": {"owner_tag": config.report.owner_tag, "team_tag": config.report.team_tag, "top": config.report.top,
                   "min_savings_usd": str(config.report.min_savings_usd),
                   "only_new_or_changed": config.report.only_new_or_changed, "mutes": len(config.report.mutes)},
        "channels": [{"name": c.name, "type": c.type, "audiences": list(c.audiences),
                      "secrets": {k: str(v) for k, v in c.secrets.items()}} for c in config.channels],
        "schedules": {**{k: v or "off" for k, v in config.daemon.schedules.items()},
                      "timezone": config.daemon.timezone},
        "daemon": {"listen": config.daemon.listen, "retention_days": config.daemon.retention_days,
                   "shutdown_timeout_seconds": config.daemon.shutdown_timeout_seconds,
                   "max_plan_age_hours": config.daemon.max_plan_age_hours},
        "audit": {"lookback_hours": config.audit.lookback.total_seconds() / 3600,
                  "period_minutes": config.audit.period.total_seconds() / 60,
                  "live_prices": config.audit.live_prices, "billing": list(config.audit.billing)},
        "recommenders": {"enabled": list(config.audit.recommenders.enabled),
                         "kpi_tag": config.audit.recommenders.kpi_tag},
    }


@click.group(name="config")
def config_group() -> None:
    """Work with the configuration file (costagent.yaml or costagent.toml)."""


@config_group.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="COSTAGENT_CONFIG", help="The file to check [default: $COSTAGENT_CONFIG].")
@click.option("--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(config_file: Path | None, fmt: str) -> None:
    """Check the configuration: every key, type and value; one line naming the key and line if not."""
    from agent.config import load

    try:
        config = load(config_file)
    except ConfigurationError as exc:
        click.echo(f"costagent: {exc.one_line()}", err=True)
        sys.exit(EXIT_USAGE)
    body = summary(config)
    if fmt == "json":
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(f"{config.source or 'no configuration file (defaults)'}: valid")
    for section in ("aws", "gcp", "azure", "audit", "recommenders", "apply", "state", "report", "schedules", "daemon"):
        shown = {k: v for k, v in body[section].items() if v not in (None, [], {}, "")}
        if shown:
            click.echo(f"  {section}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    for c in body["channels"]:  # secrets by reference only: the variable's name or the file's path
        refs = ", ".join(f"{k} from {v}" for k, v in c["secrets"].items())
        click.echo(f"  channel {c['name']}: {c['type']} to {', '.join(c['audiences'])}" + (f" ({refs})" if refs else ""))
