"""``costagent daemon`` (the scheduled jobs, /healthz and /metrics) and ``costagent run JOB...`` (the same jobs
once, for a Kubernetes CronJob or a systemd timer).

Exit codes: 0 done (a SIGTERM'd daemon too); 1 unexpected error; 2 bad configuration, a channel secret that is
not set, or an address already in use; 3 (``run``) a job failed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import click

from agent.audit import EXIT_ERROR, EXIT_INCOMPLETE, EXIT_USAGE
from agent.daemon_config import JOBS

log = logging.getLogger("costagent")


def _fail(message: str, code: int) -> None:
    click.echo(f"costagent: {message}", err=True)
    sys.exit(code)


def _open(config_file: Path | None, log_format: str) -> tuple[Any, Any, Any]:
    from agent import logs
    from agent.apply_config import ensure_sqlite_folder
    from agent.config import load
    from agent.daemon import Daemon
    from agent.journal import JournalError
    from providers.errors import ConfigurationError

    try:
        config = load(config_file)
    except ConfigurationError as exc:
        _fail(exc.one_line(), EXIT_USAGE)
    restore = logs.configure(log_format, uuid.uuid4().hex[:12])
    try:
        ensure_sqlite_folder(config.state_url)
        daemon = Daemon(config)
    except (JournalError, OSError) as exc:
        restore()
        _fail(str(exc), EXIT_USAGE)
    problems = daemon.dispatcher.check()
    if problems:
        daemon.close()
        restore()
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        _fail(f"{problems[0]}{more}", EXIT_USAGE)
    return config, daemon, restore


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="COSTAGENT_CONFIG", help="costagent.yaml: clouds, schedules, channels, apply policy, state.")
@click.option("--listen", default=None, envvar="COSTAGENT_LISTEN", metavar="HOST:PORT",
              help="Where /healthz and /metrics answer [default: daemon.listen, 127.0.0.1:9464].")
@click.option("--log-format", type=click.Choice(["json", "text"]), default="json", show_default=True,
              help="Log lines on stderr: one JSON object each (with run_id), or text.")
def daemon(config_file: Path | None, listen: str | None, log_format: str) -> None:
    """Run the jobs (collect, apply, digest, housekeeping) on their schedules until SIGTERM."""
    from agent.daemon_http import HttpEndpoint

    config, agent_daemon, _restore = _open(config_file, log_format)
    address = listen or config.daemon.listen
    try:
        endpoint = HttpEndpoint(address, agent_daemon.health, agent_daemon.metrics.registry).start()
    except (OSError, ValueError) as exc:
        agent_daemon.close()
        _fail(f"cannot listen on {address} for /healthz and /metrics: {exc}", EXIT_USAGE)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("event=signal signal=%s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent_daemon.start()
        log.info("event=listening address=%s", endpoint.address)
        while not stop.wait(1.0):
            pass
        clean = agent_daemon.shutdown()
    except Exception as exc:  # the boundary: one line, the traceback in the log
        log.error("event=daemon_failed %s: %s", type(exc).__name__, exc, exc_info=True)
        agent_daemon.shutdown(timeout=5)
        endpoint.stop()
        _fail(f"unexpected error: {type(exc).__name__}: {exc}", EXIT_ERROR)
    endpoint.stop()
    agent_daemon.close()
    logging.shutdown()
    if not clean:  # a job thread still runs; its run is marked interrupted and runs again at the next start
        sys.stderr.flush()
        os._exit(0)
    sys.exit(0)


@click.command(name="run")
@click.argument("jobs", nargs=-1, required=True, type=click.Choice(JOBS))
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="COSTAGENT_CONFIG", help="costagent.yaml: clouds, channels, apply policy, state.")
@click.option("--scheduled-for", "key", default=None, metavar="ISO-TIME",
              help="The run's scheduled time (its key in the run ledger and for digest deliveries) "
                   "[default: now, to the minute]. A second run with the same time does nothing.")
@click.option("--log-format", type=click.Choice(["json", "text"]), default="text", show_default=True)
@click.option("--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def run_jobs(jobs: tuple[str, ...], config_file: Path | None, key: str | None, log_format: str, fmt: str) -> None:
    """Run JOBS once, in order (e.g. `costagent run collect digest`), under the run ledger, and exit."""
    from agent.daemon import scheduled_now

    _config, agent_daemon, restore = _open(config_file, log_format)
    try:
        when = scheduled_now(agent_daemon.clock, key)
    except ValueError:
        agent_daemon.close()
        restore()
        _fail(f"--scheduled-for {key!r} is not an ISO time (e.g. 2026-11-23T09:00:00Z)", EXIT_USAGE)
    try:
        results = agent_daemon.run_once(jobs, when)
    finally:
        agent_daemon.close()
        restore()
    rows = []
    for job, ran in zip(jobs, results):
        if ran is None:
            rows.append({"job": job, "status": "already-ran", "scheduled_for": when.isoformat(), "detail": None})
        else:
            rows.append({"job": job, "status": ran.status, "scheduled_for": ran.scheduled_for.isoformat(),
                         "run_id": ran.run_id, "detail": ran.detail})
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        for row in rows:
            detail = row["detail"] or {}
            why = detail.get("reason") or detail.get("error") or ""
            click.echo(f"{row['job']:<13} {row['status']:<12} {row['scheduled_for']}  {why}".rstrip())
    if any(r["status"] == "failed" for r in rows):
        sys.exit(EXIT_INCOMPLETE)


COMMANDS = (daemon, run_jobs)
