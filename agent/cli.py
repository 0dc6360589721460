"""``costagent`` command line. ``audit`` is read-only by construction: it holds no actuator.

Exit codes: 0 the audit ran and read everything it was asked to (findings or not); 1 an
unexpected error (a bug; traceback with ``-v``); 2 bad usage or configuration; 3 something it
was asked to read could not be read (the report still prints, listing it under gaps).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agent import audit_config
from agent.audit import EXIT_ERROR, EXIT_INCOMPLETE, EXIT_USAGE, AuditRequest, run_audit
from agent.clock import SystemClock
from agent.progress import for_terminal
from providers.base import Provider
from providers.errors import ConfigurationError, ProviderError
from providers.model import BillingData, Cloud
from reports import render
from reports.model import AuditReport
from reports.table import render_table

if TYPE_CHECKING:
    from agent.config import Config

log = logging.getLogger("costagent")
# gRPC's C core (Cloud Monitoring's transport) logs connection events at info level straight to stderr;
# a CLI keeps stderr for its own messages. An explicit GRPC_VERBOSITY still wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

FORMATS = ("table", "json", "markdown")
DEFAULT_PERIOD = audit_config.DEFAULT_PERIOD
DEMO_PERIOD = timedelta(hours=1)
_SUFFIX_FORMAT = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".txt": "table"}


def parse_duration(text: str, default_unit: str) -> timedelta:
    """``14d``, ``36h``, ``5m``, ``300s``; a bare number takes ``default_unit`` (as ``audit.lookback`` in the file)."""
    try:
        return audit_config.parse_duration(text, default_unit)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


class _RunId(logging.Filter):
    """Stamps every log record with this invocation's run id, so one run's lines can be grepped."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


class Duration(click.ParamType):
    name = "duration"

    def __init__(self, default_unit: str) -> None:
        self.default_unit = default_unit

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value), self.default_unit)
        except click.BadParameter as exc:
            self.fail(str(exc), param, ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="costagent")
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """costagent finds wasted GPU spend on your clouds and says what to do about it."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RunId(uuid.uuid4().hex[:12]))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s run=%(run_id)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    if verbose < 2:
        for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
@click.option("--cloud", "clouds", multiple=True, type=click.Choice([c.value for c in Cloud]),
              help="Cloud to audit (repeatable). Default: the clouds the config file has a section for, else aws; "
                   "with --demo, all three.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="COSTAGENT_CONFIG",
              help="Configuration file (YAML or TOML): projects, subscriptions, regions, endpoints, the audit window "
                   "and the recommenders' thresholds.")
@click.option("--region", "regions", multiple=True, metavar="REGION",
              help="Region to audit (repeatable; us-east-1, us-central1 and eastus name their cloud). Default: AWS "
                   "the profile's region; GCP and Azure every region holding instances.")
@click.option("--profile", default=None, help="AWS named profile (default: the standard credential chain).")
@click.option("--lookback", type=Duration("d"), default=None,
              help="How far back to read usage [default: the config's audit.lookback, else 14d].")
@click.option("--period", type=Duration("m"), default=None,
              help="Metric resolution [default: the config's audit.period, else 5m; with --demo, 1h: the demo "
                   "cloud publishes hourly].")
@click.option("--output", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format. Default: table on a terminal, JSON when piped (or from --out's suffix).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write the report to FILE instead of stdout.")
@click.option("--demo", is_flag=True, help="Audit the embedded demo cloud (simulated AWS, GCP and Azure fleets on "
                                           "local emulators).")
@click.option("--live-prices/--no-live-prices", default=None,
              help="Refine the shipped price catalog with the clouds' price APIs [default: the config's "
                   "audit.live_prices, else on].")
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Progress bars on stderr (default: when stderr is a terminal).")
@click.option("--billing", "billing", multiple=True, metavar="PATH",
              help="Billing export to read (repeatable): FOCUS 1.0+, AWS CUR 1.0/2.0 or Azure EA/MCA exports, "
                   "CSV or Parquet; a file, folder, glob, s3://bucket/prefix, gs://bucket/prefix or "
                   "https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix. Gives effective rates, "
                   "commitment coverage and hourly usage for commitments. Default: the config's audit.billing.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Also write the self-contained HTML report with charts (idle GPU-hours and dollars per day, "
                   "savings by kind and team, hour-of-week idle heat map) to FILE.")
def audit(clouds: tuple[str, ...], config_file: Path | None, regions: tuple[str, ...], profile: str | None,
          lookback: timedelta | None, period: timedelta | None, fmt: str | None, out_file: Path | None, demo: bool,
          live_prices: bool | None, show_progress: bool | None, billing: tuple[str, ...],
          html_file: Path | None) -> None:
    """Read-only audit: recommend stops and off-hours schedules for idle GPU instances."""
    from agent import clouds as cloud_targets
    from agent.config import load as load_config

    fmt = fmt or _default_format(out_file)
    try:
        config = load_config(config_file)
    except ConfigurationError as exc:
        _fail(f"costagent: {exc.one_line()}", EXIT_USAGE)
    inputs = audit_inputs(config, lookback, period, live_prices, billing, demo)
    try:
        chosen = tuple(Cloud(c) for c in dict.fromkeys(clouds)) or cloud_targets.default_clouds(config, demo)
        cloud_targets.split_regions(regions, chosen)  # a region of no chosen cloud is a usage error, before any call
    except ConfigurationError as exc:
        _fail(f"costagent: {exc.one_line()}", EXIT_USAGE)
    progress = for_terminal(show_progress)
    clock = SystemClock()
    try:
        with ExitStack() as stack:
            if demo:
                click.echo(f"costagent: starting the embedded demo cloud ({', '.join(chosen)}: simulated fleets on "
                           "local emulators)...", err=True)
            opened = stack.enter_context(cloud_targets.open_targets(
                chosen, config, demo=demo, regions=regions, profile=profile, live_prices=inputs.live_prices,
                now=clock.now(), lookback=inputs.lookback))
            request = AuditRequest(regions=tuple(r for t in opened.targets for r in t.regions),
                                   lookback=inputs.lookback, period=inputs.period, demo=demo,
                                   billing=inputs.billing or tuple(opened.billing_paths),
                                   settings=config.audit.recommenders)
            outcome = run_audit(list(opened.targets), request, clock, progress,
                                billing_reader=_billing_reader([t.provider for t in opened.targets]))
    except ConfigurationError as exc:
        _fail(f"costagent: {exc.one_line()}", EXIT_USAGE)
    except ProviderError as exc:
        _fail(f"costagent: {exc.one_line()}", EXIT_INCOMPLETE)
    except Exception as exc:  # the CLI boundary: a bug still says one line; the traceback comes with -v
        log.info("event=unexpected_error", exc_info=True)
        _fail(f"costagent: unexpected error: {type(exc).__name__}: {exc} (run with -v for the traceback)", EXIT_ERROR)
    finally:
        close = getattr(progress, "close", None)
        if close:
            close()
    _write(outcome.report, fmt, out_file)
    if html_file is not None:
        from agent.digests import build_digest
        from reports.digest_html import render_html

        html_file.write_text(render_html(build_digest(outcome)), encoding="utf-8")
        click.echo(f"costagent: HTML report written to {html_file.resolve()}", err=True)
    for failure in outcome.failures:
        click.echo(f"costagent: could not read {failure}", err=True)
    sys.exit(outcome.exit_code)


@main.command()
@click.option("--cloud", type=click.Choice([c.value for c in Cloud]), default="aws", show_default=True)
@click.option("--type", "instance_type", default=None, metavar="TYPE", help="One instance type (default: all GPU types).")
@click.option("--region", default=None, metavar="REGION", help="One region (default: every region in the catalog).")
@click.option("--live/--no-live", default=False, show_default=True,
              help="Refresh from the cloud's price API (AWS Pricing API + spot history, GCP Cloud Billing Catalog, "
                   "Azure Retail Prices); the shipped figure stands where it does not answer.")
@click.option("--profile", default=None, help="AWS named profile for --live.")
@click.option("--output", "fmt", type=click.Choice(["table", "json"]), default=None,
              help="Default: table on a terminal, JSON when piped.")
def prices(cloud: str, instance_type: str | None, region: str | None, live: bool, profile: str | None,
           fmt: str | None) -> None:
    """Print the GPU price catalog: on-demand, spot and commitment rates, each with its source and date."""
    from agent.prices import live_source, price_rows
    from reports.prices import render_prices_json, render_prices_table

    chosen = Cloud(cloud)
    try:
        source = live_source(chosen, profile) if live else None
        rows = price_rows(chosen, SystemClock().now(), instance_type, region, source)
    except ImportError as exc:
        _fail(f"costagent: live {cloud} prices need the '{cloud}' extra ({exc.name} missing): "
              f"pip install 'costagent[{cloud}]'", EXIT_USAGE)
    except (ProviderError, ConfigurationError) as exc:
        _fail(f"costagent: {exc.one_line()}", EXIT_INCOMPLETE)
    if not rows:
        what = " ".join(x for x in (instance_type, region) if x) or "anything"
        _fail(f"costagent: the {cloud} catalog has no GPU prices for {what} "
              f"(try `costagent prices --cloud {cloud}` for the whole list)", EXIT_USAGE)
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    text = render_prices_json(rows) if fmt == "json" else render_prices_table(
        rows, width=max(120, shutil.get_terminal_size().columns))
    click.echo(text, nl=not text.endswith("\n"))


_ROLE_FILES = {"aws": ("infra/aws/audit-readonly-policy.json", "infra/aws/actuator-policy.json"),
               "gcp": ("infra/gcp/audit-readonly-role.yaml", "infra/gcp/actuator-role.yaml"),
               "azure": ("infra/azure/audit-readonly-role.json", "infra/azure/actuator-role.json")}


def permission_documents(cloud: str) -> tuple[str, str]:
    """The read-only policy/role and the actuator's, as the texts of the files in ``infra/``."""
    if cloud == "aws":
        from providers.aws import permissions as aws

        return aws.audit_policy_json(), aws.actuator_policy_json()
    if cloud == "gcp":
        from providers.gcp import permissions as gcp

        return gcp.audit_role_yaml(), gcp.actuator_role_yaml()
    from providers.azure import permissions as azure

    return azure.audit_role_json(), azure.actuator_role_json()


@main.command()
@click.argument("cloud", type=click.Choice([c.value for c in Cloud]))
@click.option("--role", type=click.Choice(["read", "act", "both"]), default="both", show_default=True,
              help="read: what `costagent audit` needs; act: what the actuator (the guarded apply) needs.")
@click.option("--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: the documents as in infra/ (both: each under a comment naming its file); json: one object.")
def permissions(cloud: str, role: str, fmt: str) -> None:
    """Print the IAM policy (AWS) or custom role (GCP, Azure) costagent needs: read-only and/or actuator."""
    import json

    read, act = permission_documents(cloud)
    chosen = {"read": (read,), "act": (act,), "both": (read, act)}[role]
    files = {"read": _ROLE_FILES[cloud][:1], "act": _ROLE_FILES[cloud][1:], "both": _ROLE_FILES[cloud]}[role]
    if fmt == "json":
        def parse(text: str) -> object:
            return text if cloud == "gcp" else json.loads(text)  # the GCP role is YAML: kept as its text

        body = {name: parse(doc) for name, doc in zip(("read" if role != "act" else "act", "act"), chosen)}
        click.echo(json.dumps({"cloud": cloud, **body}, indent=2))
        return
    if len(chosen) == 1:
        click.echo(chosen[0], nl=False)
        return
    for name, doc in zip(files, chosen):
        marker = "#" if cloud == "gcp" else "//"
        click.echo(f"{marker} {name}")
        click.echo(doc, nl=False)


def _billing_reader(providers: Sequence[Provider]) -> Callable[[Sequence[str]], BillingData]:
    """Reads billing exports; ``s3://``, ``gs://`` and Azure Blob (``https://<account>.blob...``, ``abfss://``)
    paths go through the AWS, GCP and Azure providers' clients (their credential chains and endpoints)."""
    aws = next((p for p in providers if p.cloud == Cloud.AWS), None)
    gcp = next((p for p in providers if p.cloud == Cloud.GCP), None)
    azure = next((p for p in providers if p.cloud == Cloud.AZURE), None)

    def read(paths: Sequence[str]) -> BillingData:
        from providers.focus import read_billing

        return read_billing(paths, aws_clients=getattr(aws, "clients", None), gcp_clients=getattr(gcp, "clients", None),
                            azure_clients=getattr(azure, "clients", None))

    return read


def _check_window(lookback: timedelta, period: timedelta, lookback_hint: str = "--lookback",
                  period_hint: str = "--period") -> None:
    problem = audit_config.window_problem(lookback, period)
    if problem:
        key, message = problem
        raise click.BadParameter(message, param_hint=lookback_hint if key == "lookback" else period_hint)


@dataclass(frozen=True)
class AuditInputs:
    """What one audit reads: each value from its flag, else the config's ``audit`` section, else the default."""

    lookback: timedelta
    period: timedelta
    live_prices: bool
    billing: tuple[str, ...]  # empty: the demo's own exports, if any


def audit_inputs(config: Config, lookback: timedelta | None, period: timedelta | None, live_prices: bool | None,
                 billing: Sequence[str], demo: bool) -> AuditInputs:
    """Flags win over the config file; with --demo and no period anywhere the period is an hour (the demo cloud
    publishes hourly). Raises ``click.BadParameter`` naming the flag or the file's key for a window it cannot read."""
    settings = config.audit
    span = settings.lookback if lookback is None else lookback
    if period is not None:
        step = period
    elif demo and "period" not in settings.configured:
        step = DEMO_PERIOD
    else:
        step = settings.period
    in_file = f" in {config.source}" if config.source else ""
    _check_window(span, step, "--lookback" if lookback is not None else f"audit.lookback{in_file}",
                  "--period" if period is not None else f"audit.period{in_file}")
    return AuditInputs(span, step, settings.live_prices if live_prices is None else live_prices,
                       tuple(billing) or settings.billing)


def _default_format(out_file: Path | None) -> str:
    if out_file is not None:
        return _SUFFIX_FORMAT.get(out_file.suffix.lower(), "json")
    return "table" if sys.stdout.isatty() else "json"


def _write(report: AuditReport, fmt: str, out_file: Path | None) -> None:
    if fmt == "table" and out_file is None and sys.stdout.isatty():
        text = render_table(report, width=shutil.get_terminal_size().columns, color=True)
    else:
        text = render(report, fmt)
    if out_file is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        out_file.write_text(text, encoding="utf-8")
        click.echo(f"costagent: report written to {out_file}", err=True)


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _register() -> None:
    from agent.cli_apply import COMMANDS
    from agent.cli_config import config_group
    from agent.cli_daemon import COMMANDS as DAEMON_COMMANDS

    for command in (*COMMANDS, *DAEMON_COMMANDS, config_group):
        main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
