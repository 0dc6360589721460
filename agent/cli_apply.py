"""``costagent plan | apply | undo | journal``: the guarded apply, ``terraform plan``/``apply`` style.

Exit codes (as ``audit``): 0 done (refusals are normal results); 1 unexpected error; 2 bad usage, configuration
or plan file; 3 a cloud call failed or something could not be read; 4 another agent holds the apply lock.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from agent.audit import EXIT_ERROR, EXIT_INCOMPLETE, EXIT_USAGE
from agent.clock import Clock, SystemClock
from agent.guards import Candidate, Mode
from agent.journal import DECISIONS, Journal, JournalError, LockHeld, default_actor
from providers.errors import ConfigurationError, ProviderError
from providers.model import Cloud

log = logging.getLogger("costagent")
EXIT_LOCKED = 4
DEFAULT_PLAN = Path("costagent-plan.json")


def _fail(message: str, code: int) -> None:
    click.echo(f"costagent: {message}", err=True)
    sys.exit(code)


def _exit_for(exc: Exception) -> None:
    """One line and the exit code for an error that ends ``plan``, ``apply`` or ``undo``."""
    if isinstance(exc, LockHeld):
        _fail(f"another agent is applying: {exc} (nothing was done)", EXIT_LOCKED)
    if isinstance(exc, ConfigurationError):  # before ProviderError, its base class
        _fail(exc.one_line(), EXIT_USAGE)
    if isinstance(exc, JournalError):
        _fail(str(exc), EXIT_USAGE)
    if isinstance(exc, ProviderError):
        _fail(exc.one_line(), EXIT_INCOMPLETE)
    log.info("event=unexpected_error", exc_info=True)
    _fail(f"unexpected error: {type(exc).__name__}: {exc} (run with -v for the traceback)", EXIT_ERROR)


def _config(config_file: Path | None) -> Any:
    from agent.config import load

    try:
        return load(config_file)
    except ConfigurationError as exc:
        _fail(exc.one_line(), EXIT_USAGE)


def _journal(config: Any, clock: Clock) -> Journal:
    from agent.apply_config import ensure_sqlite_folder

    try:
        ensure_sqlite_folder(config.state_url)
        return Journal(config.state_url, clock)
    except (JournalError, OSError) as exc:
        _fail(str(exc), EXIT_USAGE)
        raise  # unreachable: _fail exits


def _actor(actor: str | None) -> str:
    return actor or default_actor()


def _notice(marks: Sequence[tuple[Candidate, Any]]) -> bool:
    """The default notifier: a notice per mark on stderr (and in the journal). Slack and email come with the daemon."""
    for c, act_after in marks:
        click.echo(f"costagent: notice: {c.ref.key} is marked for {c.kind}; costagent acts after "
                   f"{act_after.isoformat()} unless it is tagged costagent:skip", err=True)
    return True


@contextmanager
def _opened(clouds: Sequence[Cloud], config: Any, regions: Sequence[str], profile: str | None, demo: bool,
            clock: Clock, lookback: timedelta, live_prices: bool = False) -> Iterator[Any]:
    from agent import clouds as cloud_targets

    with cloud_targets.open_targets(clouds, config, demo=demo, regions=regions, profile=profile,
                                    live_prices=live_prices, now=clock.now(), lookback=lookback) as opened:
        yield opened


def _sides(targets: Sequence[Any]) -> dict[Cloud, Any]:
    from agent.apply import CloudSide
    from agent.clouds import actuator_for

    return {t.provider.cloud: CloudSide(t.provider, actuator_for(t.provider)) for t in targets if t.error is None}


@click.command()
@click.option("--cloud", "clouds", multiple=True, type=click.Choice([c.value for c in Cloud]),
              help="Cloud to plan for (repeatable); default as for audit.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="COSTAGENT_CONFIG", help="Configuration file (YAML or TOML): the apply policy, state url, clouds, "
                                              "audit window and recommenders' thresholds.")
@click.option("--region", "regions", multiple=True, metavar="REGION", help="Region (repeatable), as for audit.")
@click.option("--profile", default=None, help="AWS named profile (default: the standard credential chain).")
@click.option("--lookback", default=None,
              help="How far back to read usage [default: the config's audit.lookback, else 14d].")
@click.option("--period", default=None,
              help="Metric resolution [default: the config's audit.period, else 5m; with --demo, 1h].")
@click.option("--demo", is_flag=True, help="Plan against the embedded demo cloud (nothing persists after the run).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_PLAN,
              show_default=True, help="Where to write the plan file (JSON); '-' prints it on stdout.")
@click.option("--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="What to print: the plan for a person (text) or the plan file itself (json).")
@click.option("--live-prices/--no-live-prices", default=None,
              help="Refine the price catalog with the clouds' price APIs [default: the config's audit.live_prices, "
                   "else on].")
@click.option("--billing", "billing", multiple=True, metavar="PATH",
              help="Billing export to read (repeatable), as for audit: effective rates of commitment-covered "
                   "instances [default: the config's audit.billing].")
def plan(clouds: tuple[str, ...], config_file: Path | None, regions: tuple[str, ...], profile: str | None,
         lookback: str | None, period: str | None, demo: bool, out_file: Path, fmt: str, live_prices: bool | None,
         billing: tuple[str, ...]) -> None:
    """Audit, then write the plan: each recommended action with every guard's verdict. Changes nothing."""
    from agent import clouds as cloud_targets
    from agent.audit import AuditRequest, run_audit
    from agent.cli import _billing_reader, audit_inputs, parse_duration
    from agent.planning import build_plan
    from agent.progress import for_terminal
    from reports.actions import render_plan

    config = _config(config_file)
    inputs = audit_inputs(config, parse_duration(lookback, "d") if lookback else None,
                          parse_duration(period, "m") if period else None, live_prices, billing, demo)
    span, step = inputs.lookback, inputs.period
    clock = SystemClock()
    try:
        chosen = tuple(Cloud(c) for c in dict.fromkeys(clouds)) or cloud_targets.default_clouds(config, demo)
        with ExitStack() as stack, _journal(config, clock) as journal:
            opened = stack.enter_context(_opened(chosen, config, regions, profile, demo, clock, span,
                                                 inputs.live_prices))
            request = AuditRequest(regions=tuple(r for t in opened.targets for r in t.regions), lookback=span,
                                   period=step, demo=demo, billing=inputs.billing or tuple(opened.billing_paths),
                                   settings=config.audit.recommenders)
            outcome = run_audit(list(opened.targets), request, clock, for_terminal(None),
                                billing_reader=_billing_reader([t.provider for t in opened.targets]))
            made = build_plan(outcome, opened.targets, _sides(opened.targets), config.apply, journal, clock,
                              actor=_actor(None), period=step)
    except Exception as exc:  # the CLI boundary
        _exit_for(exc)
    from agent import plan as plans

    text = plans.write(made, None if str(out_file) == "-" else out_file)
    body = plans.to_dict(made)
    if str(out_file) == "-" or fmt == "json":
        click.echo(text, nl=False)
    if fmt == "text":
        click.echo(render_plan(body), nl=False, err=str(out_file) == "-")
    if str(out_file) != "-":
        click.echo(f"costagent: plan written to {out_file}; apply it with `costagent apply {out_file}`", err=True)
    for failure in outcome.failures:
        click.echo(f"costagent: could not read {failure}", err=True)
    if outcome.failures:
        sys.exit(EXIT_INCOMPLETE)


@click.command(name="apply")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="COSTAGENT_CONFIG", help="Configuration file (TOML): the [apply] policy, [state] url, clouds.")
@click.option("--profile", default=None, help="AWS named profile (default: the standard credential chain).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Evaluate and journal every guard, change nothing (only ever safer "
                                              "than the configured mode).")
@click.option("--approve", "approved", multiple=True, metavar="RECOMMENDATION_ID",
              help="Approve a recommendation that needs approval (resizes by default); repeatable.")
@click.option("--max-plan-age", default="24h", show_default=True, help="Refuse an older plan.")
@click.option("--actor", default=None, envvar="COSTAGENT_ACTOR", help="Who acts, for the journal [default: user@host].")
@click.option("--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def apply_(plan_file: Path, config_file: Path | None, profile: str | None, yes: bool, dry_run: bool,
           approved: tuple[str, ...], max_plan_age: str, actor: str | None, fmt: str) -> None:
    """Execute a plan: every guard re-evaluated right before each action; every decision journaled."""
    from agent import plan as plans
    from agent.apply import Applier
    from agent.cli import parse_duration
    from reports.actions import apply_dict, render_apply, render_plan, to_json

    config = _config(config_file)
    clock = SystemClock()
    try:
        loaded = plans.read(plan_file)
    except plans.PlanError as exc:
        _fail(str(exc), EXIT_USAGE)
    if loaded.demo:
        _fail(f"plan {plan_file} was made against the embedded demo cloud, which lived only for that run: "
              "nothing to apply it to", EXIT_USAGE)
    oldest = parse_duration(max_plan_age, "h")
    if plans.age(loaded, clock.now()) > oldest:
        _fail(f"plan {plan_file} was made at {loaded.created_at.isoformat()}, more than {max_plan_age} ago: "
              "run `costagent plan` again (or pass --max-plan-age)", EXIT_USAGE)
    cli_mode = Mode.DRY_RUN if dry_run else None
    mode = min(config.apply.policy.mode, cli_mode or Mode.APPLY)
    acting = [p for p in loaded.actions if p.would_act]
    if mode is Mode.APPLY and acting and not yes:
        click.echo(render_plan(plans.to_dict(loaded)), err=True)
        if not sys.stdin.isatty():
            _fail("refusing to apply without confirmation: stdin is not a terminal (pass --yes)", EXIT_USAGE)
        answer = click.prompt(f"Apply up to {len(acting)} action(s) after re-checking every guard? "
                              "Only 'yes' will be accepted", default="", show_default=False, err=True)
        if answer.strip() != "yes":
            _fail("apply cancelled", EXIT_USAGE)
    regions = [r for rs in loaded.regions.values() for r in rs]
    try:
        with ExitStack() as stack, _journal(config, clock) as journal:
            opened = stack.enter_context(_opened([Cloud(c) for c in loaded.clouds], config, regions, profile, False,
                                                 clock, timedelta(hours=2)))
            applier = Applier(journal, _sides(opened.targets), config.apply, clock, actor=_actor(actor),
                              cli_mode=cli_mode, approved=approved, notifier=_notice,
                              period=timedelta(seconds=loaded.period_seconds))
            with applier.lease():
                result = applier.run(loaded)
    except Exception as exc:  # the CLI boundary
        _exit_for(exc)
    click.echo(to_json(apply_dict(result)) if fmt == "json" else render_apply(result), nl=False)
    if result.failed or result.unreconciled:
        sys.exit(EXIT_INCOMPLETE)


@click.command()
@click.argument("action_id")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="COSTAGENT_CONFIG")
@click.option("--profile", default=None, help="AWS named profile (default: the standard credential chain).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--actor", default=None, envvar="COSTAGENT_ACTOR", help="Who acts, for the journal [default: user@host].")
@click.option("--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def undo(action_id: str, config_file: Path | None, profile: str | None, yes: bool, actor: str | None,
         fmt: str) -> None:
    """Reverse a done action: start what was stopped, restore the previous type or the group's sizes."""
    from agent.apply import Applier
    from reports.actions import record_dict, render_journal, to_json

    config = _config(config_file)
    clock = SystemClock()
    try:
        with ExitStack() as stack, _journal(config, clock) as journal:
            record = journal.find(action_id)
            if not yes:
                click.echo(render_journal([record]), err=True)
                if not sys.stdin.isatty():
                    _fail("refusing to undo without confirmation: stdin is not a terminal (pass --yes)", EXIT_USAGE)
                if click.prompt("Undo this action? Only 'yes' will be accepted", default="", show_default=False,
                                err=True).strip() != "yes":
                    _fail("undo cancelled", EXIT_USAGE)
            opened = stack.enter_context(_opened([record.ref.cloud], config, [record.ref.region], profile, False,
                                                 clock, timedelta(hours=2)))
            applier = Applier(journal, _sides(opened.targets), config.apply, clock, actor=_actor(actor))
            with applier.lease():
                done = applier.undo(record)
    except Exception as exc:  # the CLI boundary
        _exit_for(exc)
    click.echo(to_json(record_dict(done)) if fmt == "json" else render_journal([done]), nl=False)
    if done.status != "done":
        sys.exit(EXIT_INCOMPLETE)


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="COSTAGENT_CONFIG")
@click.option("--all", "show_all", is_flag=True, help="Also the decisions that changed nothing (refused, dry-run, "
                                                      "marked).")
@click.option("--plan", "plan_id", default=None, help="Only this plan's actions.")
@click.option("--resource", default=None, metavar="TEXT", help="Only resources whose id contains TEXT.")
@click.option("--since", default=None, help="Only actions since this long ago (e.g. 7d, 12h).")
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--verbose", "-v", "verbose", is_flag=True, help="Every guard's verdict, not only the refusals.")
@click.option("--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def journal(config_file: Path | None, show_all: bool, plan_id: str | None, resource: str | None, since: str | None,
            limit: int, verbose: bool, fmt: str) -> None:
    """What costagent did (and, with --all, decided not to do): by whom, when, before and after."""
    from agent.cli import parse_duration
    from agent.journal import STATUSES
    from reports.actions import record_dict, render_journal, to_json

    config = _config(config_file)
    clock = SystemClock()
    statuses = None if show_all else [s for s in STATUSES if s not in DECISIONS]
    start = clock.now() - parse_duration(since, "d") if since else None
    with _journal(config, clock) as store:
        records = store.history(since=start, statuses=statuses, plan_id=plan_id,
                                limit=None if resource else limit)
    if resource:
        records = [r for r in records if resource in r.ref.id][:limit]
    click.echo(to_json([record_dict(r) for r in records]) if fmt == "json" else render_journal(records, verbose),
               nl=False)


COMMANDS = (plan, apply_, undo, journal)
