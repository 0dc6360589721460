"""The daemon's parts in process: the run ledger, each job against the GCP emulators, recovery of a run cut
short, the job store kept across restarts, failure isolation, /healthz and /metrics, JSON logs, `costagent run`."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from agent import logs
from agent.config import load
from agent.daemon import Daemon
from agent.daemon_http import HttpEndpoint
from agent.journal import Journal
from agent.runs import FAILED, INTERRUPTED, OK, SKIPPED, SUPERSEDED, RunLedger
from agent.schedules import trigger
from agent.state_schema import collected
from providers.sandbox.gcp_compute import GcpComputeEmulator
from providers.sandbox.gcp_monitoring import GcpMonitoringEmulator, add_gce_host, add_ops_agent_gpu

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
HOURS = pd.date_range(NOW - timedelta(days=3), NOW, freq="1h", inclusive="left")
PROJECT, ZONE = "ml-prod", "us-central1-a"
AT = NOW.replace(hour=9) if NOW.hour >= 9 else NOW - timedelta(hours=1)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def dead_owner() -> str:
    """A lease owner naming a process on this host that has exited."""
    import socket

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"ops@{socket.gethostname()}:{proc.pid}:deadbeef"


@dataclass
class Gcp:
    compute: GcpComputeEmulator
    monitoring: GcpMonitoringEmulator
    tmp: Path

    def config(self, extra: str = "", channels: str | None = None) -> Path:
        out = self.tmp / "out"
        path = self.tmp / "costagent.yaml"
        path.write_text(f"""
gcp:
  projects: [{PROJECT}]
  endpoints: {{compute: "{self.compute.url}", monitoring: "{self.monitoring.address}"}}
state: {{url: "sqlite:///{(self.tmp / 'state.db').as_posix()}"}}
audit: {{lookback: 3d, period: 1h, live_prices: false}}
channels:
{channels if channels is not None else f'  - {{name: files, type: file, path: "{out.as_posix()}/{{audience}}.md", audiences: [everyone, each:team]}}'}
{extra}
""", encoding="utf-8")
        return path


@pytest.fixture
def gcp(tmp_path: Path) -> Iterator[Gcp]:
    with GcpComputeEmulator() as compute, GcpMonitoringEmulator() as monitoring:
        for name, util, labels in (("idle-a100", 0.0, {"team": "ml", "owner": "alice"}),
                                   ("busy-l4", 90.0, {"team": "infra"})):
            inst = compute.add_instance(PROJECT, ZONE, name, "a2-highgpu-1g", labels=labels,
                                        created=NOW - timedelta(days=30), last_start=NOW - timedelta(days=30))
            n = len(HOURS)
            add_ops_agent_gpu(monitoring, PROJECT, ZONE, inst["id"], 0, HOURS, np.full(n, util))
            add_gce_host(monitoring, PROJECT, ZONE, inst["id"], HOURS, np.full(n, 1.0), np.full(n, 3e3),
                         np.full(n, 3e3))
        yield Gcp(compute, monitoring, tmp_path)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[RunLedger]:
    journal = Journal(f"sqlite:///{(tmp_path / 'state.db').as_posix()}", Clock(AT))
    yield RunLedger(journal.engine, journal.clock)
    journal.close()


# -- the run ledger ------------------------------------------------------------------------------------------------

def test_a_scheduled_run_is_claimed_once(ledger: RunLedger) -> None:
    first = ledger.claim("digest", AT)
    assert first is not None and first.status == "running"
    assert RunLedger(ledger.engine, ledger.clock).claim("digest", AT) is None  # another daemon, same database
    ledger.finish(first.run_id, OK, {"sent": 2})
    assert ledger.claim("digest", AT) is None  # a re-fire of the same time
    assert ledger.claim("digest", AT + timedelta(hours=1)) is not None


def test_a_run_of_a_dead_process_is_taken_over_with_its_scheduled_time(ledger: RunLedger) -> None:
    gone = RunLedger(ledger.engine, ledger.clock, owner=dead_owner())
    assert gone.claim("digest", AT) is not None
    assert [r.job for r in ledger.unfinished()] == ["digest"]
    again = ledger.claim("digest", AT)
    assert again is not None and again.attempt == 2 and again.scheduled_for == AT and again.owner == ledger.owner


def test_a_live_run_elsewhere_is_left_alone_until_its_heartbeat_is_stale(ledger: RunLedger) -> None:
    clock = Clock(AT)
    elsewhere = RunLedger(ledger.engine, clock, owner="ops@another-host:123:abcd1234")
    assert elsewhere.claim("collect", AT) is not None
    here = RunLedger(ledger.engine, clock)
    assert here.claim("collect", AT) is None and here.unfinished() == []
    clock.at = AT + timedelta(minutes=3)  # no heartbeat for 3 minutes
    assert [r.job for r in here.unfinished()] == ["collect"]
    assert here.claim("collect", AT) is not None


def test_runs_still_going_at_shutdown_are_marked_interrupted(ledger: RunLedger) -> None:
    ledger.claim("apply", AT)
    assert [r.job for r in ledger.interrupt_mine()] == ["apply"]
    assert ledger.history("apply")[0].status == INTERRUPTED
    assert ledger.claim("apply", AT) is not None  # the next start runs it again


# -- jobs ----------------------------------------------------------------------------------------------------------

def test_collect_then_digest_delivers_per_audience_once_per_key(gcp: Gcp) -> None:
    daemon = Daemon(load(gcp.config()))
    try:
        collect = daemon.run_job("collect", AT)
        assert collect is not None and collect.status == OK, collect.detail
        assert collect.detail["by_kind"] == {"stop": 1} and collect.detail["would_act"] == 1
        first = daemon.run_job("digest", AT)
        assert first is not None and first.status == OK, first.detail
        assert sorted(d["audience"] for d in first.detail["deliveries"]) == ["everyone", "team:ml"]
        assert daemon.run_job("digest", AT) is None  # the same scheduled time again: nothing
        later = daemon.run_job("digest", AT + timedelta(days=1))
        assert {d["status"] for d in later.detail["deliveries"]} == {"sent"}
    finally:
        daemon.close()
    text = (gcp.tmp / "out" / "team_ml.md").read_text()
    assert "idle-a100" in text and "busy-l4" not in text


def test_digest_and_apply_skip_before_any_collect(gcp: Gcp) -> None:
    daemon = Daemon(load(gcp.config()))
    try:
        for job in ("digest", "apply"):
            run = daemon.run_job(job, AT)
            assert run.status == SKIPPED and run.detail["reason"] == "nothing collected yet"
    finally:
        daemon.close()


def test_apply_runs_a_new_plan_once_in_dry_run_by_default(gcp: Gcp) -> None:
    daemon = Daemon(load(gcp.config()))
    try:
        daemon.run_job("collect", AT)
        first = daemon.run_job("apply", AT)
        assert first.status == OK and first.detail["mode"] == "dry-run" and first.detail["steps"] == {"dry-run": 1}
        second = daemon.run_job("apply", AT + timedelta(minutes=30))
        assert second.status == SKIPPED and "applied already" in second.detail["reason"]
    finally:
        daemon.close()
    assert gcp.compute.count("/stop") == 0


def test_a_grace_mark_is_announced_through_the_channels(gcp: Gcp) -> None:
    daemon = Daemon(load(gcp.config('apply: {mode: apply, grace_hours: 24}')))
    try:
        daemon.run_job("collect", AT)
        run = daemon.run_job("apply", AT)
        assert run.detail["steps"] == {"marked": 1}, run.detail
        assert [m.notified for m in daemon.journal.marks()] == [True]
    finally:
        daemon.close()
    notice = (gcp.tmp / "out" / "everyone.md").read_text()
    assert "idle-a100" in notice and "Due" in notice
    assert gcp.compute.count("/stop") == 0


def test_a_failing_job_fails_only_its_run(gcp: Gcp) -> None:
    config = gcp.config()
    daemon = Daemon(load(config), opener=_broken_opener)
    try:
        broken = daemon.run_job("collect", AT)
        assert broken.status == FAILED and broken.detail["error"] == "gcp compute: connection refused"
        assert daemon.run_job("housekeeping", AT).status == OK
        text = _metrics_text(daemon)
        assert 'costagent_runs_total{job="collect",status="failed"} 1.0' in text
        assert 'costagent_runs_total{job="housekeeping",status="ok"} 1.0' in text
    finally:
        daemon.close()


def _deliveries(daemon: Daemon) -> list:  # type: ignore[type-arg]
    from agent.state_schema import deliveries

    with daemon.journal.engine.connect() as conn:
        return conn.execute(select(deliveries)).all()


def _broken_opener(*_args: object) -> object:
    from providers.errors import ProviderError

    raise ProviderError("gcp compute: connection refused")


def _metrics_text(daemon: Daemon) -> str:
    from prometheus_client import generate_latest

    return generate_latest(daemon.metrics.registry).decode()


def test_housekeeping_prunes_old_rows_but_keeps_the_latest(gcp: Gcp) -> None:
    clock = Clock(AT - timedelta(days=200))
    daemon = Daemon(load(gcp.config()), clock=clock)
    try:
        daemon.run_job("collect", clock.at)
        daemon.run_job("digest", clock.at)
        clock.at += timedelta(days=1)
        daemon.run_job("digest", clock.at)
        clock.at = AT
        run = daemon.run_job("housekeeping", AT)
        assert run.detail["runs"] == 1 and run.detail["deliveries"] == 1  # the older digest run and its send
        assert daemon.ledger.last("digest").scheduled_for == AT - timedelta(days=199)
        kept = {(d.channel, d.digest_key) for d in _deliveries(daemon)}
        assert kept == {("files", (AT - timedelta(days=199)).isoformat(timespec="microseconds"))}
        with daemon.journal.engine.connect() as conn:
            assert len(conn.execute(select(collected)).all()) == 1  # the latest collect stays
    finally:
        daemon.close()


# -- scheduling, recovery, health ----------------------------------------------------------------------------------

def test_recovery_runs_a_cut_short_run_again_with_its_scheduled_time(gcp: Gcp) -> None:
    config = load(gcp.config('schedules: {collect: "0 0 1 1 *", apply: "off", digest: "0 0 1 1 *", '
                             'housekeeping: "off"}'))
    setup = Daemon(config)
    setup.run_job("collect", AT)
    RunLedger(setup.journal.engine, setup.clock, owner=dead_owner()).claim("digest", AT)
    setup.close()
    daemon = Daemon(config)
    try:
        daemon.start()
        run = _wait(lambda: daemon.ledger.last("digest", (OK,)))
        assert run.scheduled_for == AT and run.attempt == 2
    finally:
        daemon.shutdown(timeout=10)
        daemon.close()


def test_a_cut_short_run_is_superseded_when_a_newer_run_is_due_at_once(gcp: Gcp) -> None:
    config = load(gcp.config('schedules: {collect: "off", apply: "off", digest: "* * * * *", housekeeping: "off"}'))
    daemon = Daemon(config)
    daemon.scheduler.start(paused=True)
    daemon.sync_jobs()
    past = datetime.now(UTC) - timedelta(minutes=5)
    daemon.scheduler.modify_job("digest", jobstore="default", next_run_time=past + timedelta(minutes=1))
    RunLedger(daemon.journal.engine, daemon.clock, owner=dead_owner()).claim("digest", past)
    try:
        assert daemon.recover() == [f"digest@{past.isoformat()} superseded"]
        assert daemon.ledger.history("digest")[0].status == SUPERSEDED
    finally:
        daemon.stop_scheduler()
        daemon.close()


def test_the_job_store_keeps_a_missed_run_time_across_restarts(gcp: Gcp) -> None:
    config = load(gcp.config('schedules: {collect: "0 9 * * 1-5", apply: "off", digest: "0 9 * * 1-5", '
                             'housekeeping: "off"}'))
    first = Daemon(config)
    first.scheduler.start(paused=True)
    assert first.sync_jobs() == {"collect": "added", "apply": "off", "digest": "added", "housekeeping": "off"}
    missed = datetime.now(UTC) - timedelta(hours=2)
    first.scheduler.modify_job("digest", jobstore="default", next_run_time=missed)
    first.stop_scheduler()
    first.close()
    changed = load(gcp.config('schedules: {collect: "0 10 * * 1-5", apply: "off", digest: "0 9 * * 1-5", '
                              'housekeeping: "off"}'))
    second = Daemon(changed)
    second.scheduler.start(paused=True)
    try:
        assert second.sync_jobs() == {"collect": "rescheduled", "apply": "off", "digest": "kept",
                                      "housekeeping": "off"}
        assert second.scheduler.get_job("digest").next_run_time == missed  # runs (once) as soon as it resumes
    finally:
        second.stop_scheduler()
        second.close()


def test_healthz_and_metrics_over_http(gcp: Gcp) -> None:
    config = load(gcp.config('schedules: {collect: "0 0 1 1 *", apply: "off", digest: "off", housekeeping: "off"}'))
    daemon = Daemon(config)
    endpoint = HttpEndpoint("127.0.0.1:0", daemon.health, daemon.metrics.registry).start()
    base = f"http://{endpoint.address}"
    try:
        assert _get(base + "/healthz")[0] == 503  # the scheduler is not running yet
        daemon.start()
        code, body = _get(base + "/healthz")
        health = json.loads(body)
        assert code == 200 and health["status"] == "ok" and health["jobs"]["collect"]["next_run"].startswith(
            f"{datetime.now(UTC).year + 1}-01-01T00:00:00")
        code, text = _get(base + "/metrics")
        assert code == 200 and "costagent_run_duration_seconds" in text and "costagent_api_errors_total" in text
        assert _get(base + "/nope")[0] == 404
        daemon.shutdown(timeout=5)
        assert json.loads(_get(base + "/healthz")[1])["status"] == "stopping"
    finally:
        endpoint.stop()
        daemon.close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait(check, timeout: float = 60):  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


# -- logs, schedules, the CLI --------------------------------------------------------------------------------------

def test_json_log_lines_carry_the_run_id_and_lift_key_value_pairs() -> None:
    record = logging.LogRecord("agent.jobs", logging.INFO, __file__, 1, "event=collected plan=%s gaps=%d",
                               ("plan-1", 2), None)
    token = logs.run_id.set("abc123")
    try:
        logs.Stamp("process").filter(record)
    finally:
        logs.run_id.reset(token)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["run_id"] == "abc123" and line["event"] == "collected" and line["plan"] == "plan-1"
    assert line["message"] == "event=collected plan=plan-1 gaps=2" and line["level"] == "info"
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    logs.Stamp("process").filter(outside)
    assert json.loads(logs.JsonFormatter().format(outside))["run_id"] == "process"


@pytest.mark.parametrize("text, seconds", [("@every 30s", 30), ("@every 5m", 300), ("@every 2h", 7200)])
def test_every_schedules_are_intervals(text: str, seconds: int) -> None:
    assert trigger(text).interval == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["@every", "@every 0s", "@every 5 minutes", "@every -1m"])
def test_bad_every_schedules_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="@every"):
        trigger(text)


def test_costagent_run_runs_jobs_once_per_scheduled_time(gcp: Gcp) -> None:
    from agent.cli import main

    config = gcp.config()
    args = ["run", "collect", "digest", "--config", str(config), "--scheduled-for", "2026-11-23T09:00:00Z",
            "--output", "json"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    rows = json.loads(first.stdout)
    assert [(r["job"], r["status"]) for r in rows] == [("collect", "ok"), ("digest", "ok")]
    again = CliRunner().invoke(main, args)
    assert [r["status"] for r in json.loads(again.stdout)] == ["already-ran", "already-ran"]


def test_costagent_run_refuses_a_channel_whose_secret_is_not_set(gcp: Gcp) -> None:
    from agent.cli import main

    config = gcp.config(channels="  - {name: ops, type: slack-webhook, url_env: COSTAGENT_TEST_UNSET_HOOK}")
    result = CliRunner().invoke(main, ["run", "digest", "--config", str(config)], env={
        "COSTAGENT_TEST_UNSET_HOOK": ""})
    assert result.exit_code == 2
    assert "channel ops: url_env names $COSTAGENT_TEST_UNSET_HOOK, which is not set" in result.output


def test_a_digest_firing_with_a_collect_waits_for_it(gcp: Gcp) -> None:
    import threading
    import time

    config = load(gcp.config('schedules: {collect: "0 9 * * *", apply: "off", digest: "0 9 * * *", '
                             'housekeeping: "off"}'))
    daemon = Daemon(config)
    nine = datetime(2026, 11, 23, 9, tzinfo=UTC)
    try:
        digest = threading.Thread(target=daemon.run_job, args=("digest", nine))
        digest.start()  # first, as a scheduler may start it
        time.sleep(1.0)
        assert daemon.ledger.find("digest", nine).status == "running"  # waiting for the 09:00 collect
        daemon.run_job("collect", nine)
        digest.join(60)
        run = daemon.ledger.find("digest", nine)
        assert run.status == OK and run.detail["collect_run"] == daemon.ledger.find("collect", nine).run_id
        daemon.run_job("collect", nine + timedelta(minutes=7))  # not a collect fire time: nobody waits
        assert daemon.run_job("digest", nine + timedelta(minutes=7)).detail["collect_run"] != run.detail[
            "collect_run"]
    finally:
        daemon.close()
