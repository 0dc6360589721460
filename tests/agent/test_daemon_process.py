"""``costagent daemon`` as users run it: its own process, configured by a costagent.yaml, against the Azure
Resource Manager emulator (HTTPS, Monitor extension), a real SMTP server with STARTTLS (aiosmtpd) and a local
HTTP endpoint standing in for Slack's incoming webhook. Several cycles, SIGTERM, a restart after missed runs:
each digest arrives once per channel and audience, escaped; the missed runs are coalesced into one; nothing
is lost. Schedules use ``@every <n>s`` so cycles take seconds, not minutes."""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import trustme

from providers.sandbox.azure_arm import AzureArmEmulator
from providers.sandbox.azure_monitor import AzureMonitorExtension
from reports.digest_slack import check_limits
from tests.reports.test_email import AnyPortController, Inbox

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
HOURS = pd.date_range(NOW - timedelta(days=3), NOW, freq="1h", inclusive="left")
SUB, RG, LOCATION = "7d3e5a1c-0000-4000-8000-00000000d43d", "rg-ml", "eastus"
HOSTILE_OWNER = "<!channel> <script>alert(1)</script>"
FLEET = {  # name -> (size, GPU utilization, tags)
    "idle-a100": ("Standard_NC24ads_A100_v4", 0.0, {"team": "ml", "owner": HOSTILE_OWNER}),
    "idle-a10": ("Standard_NV36ads_A10_v5", 0.0, {"team": "vision <b>&</b> co", "owner": "bob"}),
    "busy-t4": ("Standard_NC8as_T4_v3", 93.0, {"team": "ml"}),
}
CREDENTIALS = {"AZURE_TENANT_ID": "00000000-0000-0000-0000-00000000beef", "AZURE_CLIENT_ID": "costagent-ci",
               "AZURE_CLIENT_SECRET": "not-a-secret"}
WEBHOOK_PATH = "/services/T000/B000/daemon-test-secret"


@dataclass
class Slack:
    """A stand-in for Slack's incoming webhook: keeps each payload; can hold its answers for a while."""

    url: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0


@dataclass
class World:
    arm: AzureArmEmulator
    slack: Slack
    inbox: Inbox
    smtp_port: int
    ca: trustme.CA
    tmp: Path
    port: int

    @property
    def db(self) -> Path:
        return self.tmp / "state.db"

    def config(self, **schedules: str) -> Path:
        chosen = {"collect": "@every 4s", "apply": "off", "digest": "@every 4s", "housekeeping": "off", **schedules}
        ca_file = self.tmp / "smtp-ca.pem"
        self.ca.cert_pem.write_to_path(str(ca_file))
        path = self.tmp / "costagent.yaml"
        path.write_text(f"""
azure:
  subscriptions: ["{SUB}"]
  base_url: "{self.arm.url}"
  ca_bundle: "{Path(self.arm.ca_path).as_posix()}"
state:
  url: "sqlite:///{self.db.as_posix()}"
audit:
  lookback: 3d
  period: 1h
  live_prices: false
report:
  html_dir: "{(self.tmp / 'html').as_posix()}"
channels:
  - name: slack
    type: slack-webhook
    url_env: TEST_SLACK_WEBHOOK
    audiences: [everyone, each:team]
  - name: mail
    type: email
    host: 127.0.0.1
    port: {self.smtp_port}
    from: costagent@example.com
    to: [finops@example.com]
    ca_file: "{ca_file.as_posix()}"
schedules:
{chr(10).join(f'  {k}: "{v}"' for k, v in chosen.items())}
daemon:
  shutdown_timeout_seconds: 20
""", encoding="utf-8")
        return path

    def start(self, config: Path) -> subprocess.Popen[str]:
        env = {**os.environ, **CREDENTIALS, "AZURE_AUTHORITY_HOST": self.arm.url,
               "TEST_SLACK_WEBHOOK": self.slack.url + WEBHOOK_PATH}
        return subprocess.Popen([sys.executable, "-m", "agent.cli", "daemon", "--config", str(config), "--listen",
                                 f"127.0.0.1:{self.port}"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def runs(self, job: str | None = None, status: str | None = None) -> list[sqlite3.Row]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT * FROM runs ORDER BY scheduled_for").fetchall()
        return [r for r in rows if (job is None or r["job"] == job) and (status is None or r["status"] == status)]

    def deliveries(self) -> list[sqlite3.Row]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute("SELECT * FROM deliveries").fetchall()


def _slack_server(slack: Slack) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            slack.posts.append({"path": self.path, "json": body, "at": time.time()})
            time.sleep(slack.delay)
            ok = self.path == WEBHOOK_PATH
            data = b"ok" if ok else b"no_service"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(tls)
    inbox = Inbox()
    smtp = AnyPortController(inbox, hostname="127.0.0.1", port=0, tls_context=tls, require_starttls=True)
    smtp.start()
    slack = Slack()
    server = _slack_server(slack)
    slack.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monitor = AzureMonitorExtension()
    with AzureArmEmulator(extensions=[monitor], lro_polls=0) as arm:
        arm.add_subscription(SUB)
        for name, (size, util, tags) in FLEET.items():
            vm = arm.add_vm(SUB, RG, name, size, LOCATION, tags=tags, created=NOW - timedelta(days=30))
            n = len(HOURS)
            monitor.add_gpu_series(vm["id"], 0, "utilization_gpu", (HOURS, np.full(n, util)))
            monitor.add_series(vm["id"], "Percentage CPU", (HOURS, np.full(n, 40.0 if util else 1.0)))
            for metric in ("Network In Total", "Network Out Total"):
                monitor.add_series(vm["id"], metric, (HOURS, np.full(n, 3e3 * 3600)), unit="Bytes")
        yield World(arm, slack, inbox, smtp.port, ca, tmp_path, _free_port())
    server.shutdown()
    server.server_close()
    smtp.stop()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90, proc: subprocess.Popen[str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the daemon exited ({proc.returncode}) while waiting for {what}:\n"
                                 + proc.stderr.read()[-4000:])  # type: ignore[union-attr]
        try:
            found = check()
        except (OSError, sqlite3.Error):
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


def slack_texts(post: dict[str, Any]) -> str:
    return json.dumps(post["json"])


def test_cycles_deliver_each_digest_once_escaped_and_sigterm_stops_cleanly(world: World) -> None:
    proc = world.start(world.config())
    try:
        wait_for("/healthz", lambda: world.get("/healthz")[0] == 200, proc=proc)
        wait_for("three digest runs that sent", lambda: len([r for r in world.runs("digest", "ok")
                                                            if '"sent"' in (r["detail"] or "")]) >= 3, proc=proc)
        status, metrics = world.get("/metrics")
        health = json.loads(world.get("/healthz")[1])
    finally:
        code, err = stop(proc)
    assert code == 0, err[-3000:]
    assert status == 200
    assert 'costagent_runs_total{job="collect",status="ok"}' in metrics
    assert 'costagent_recommendations{kind="stop"} 2.0' in metrics
    assert "costagent_savings_found_total_usd_per_month" in metrics
    assert health["status"] == "ok" and health["jobs"]["digest"]["schedule"] == "@every 4s"
    assert health["jobs"]["apply"]["schedule"] == "off"

    # Every stderr line is a JSON object with a run id; the job lines carry their run's id.
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert all(line["run_id"] for line in lines)
    digest_ids = {r["run_id"] for r in world.runs("digest")}
    assert digest_ids <= {line["run_id"] for line in lines if line.get("job") == "digest"}
    assert any(line.get("event") == "daemon_stopped" and "clean=True" in line["message"] for line in lines)

    # Each digest run's key reached each (channel, audience) once: deliveries are unique per key, and the
    # endpoints got exactly as many messages as were recorded sent.
    sent = [d for d in world.deliveries() if d["status"] == "sent"]
    assert len({(d["channel"], d["audience"], d["digest_key"]) for d in sent}) == len(sent)
    assert len(world.slack.posts) == sum(d["channel"] == "slack" for d in sent)
    assert len(world.inbox.received) == sum(d["channel"] == "mail" for d in sent)
    audiences = {d["audience"] for d in sent if d["channel"] == "slack"}
    assert audiences == {"everyone", "team:ml", "team:vision <b>&</b> co"}

    # Escaped everywhere: no Slack broadcast, no markup from a tag.
    for post in world.slack.posts:
        assert check_limits(post["json"]) == []
        text = slack_texts(post)
        assert "<!channel>" not in text and "<script>" not in text and "<b>" not in text
    assert any("&lt;!channel&gt;" in slack_texts(p) for p in world.slack.posts)
    message = email.message_from_bytes(world.inbox.received[0]["content"], policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert [p.get_content_type() for p in message.walk() if p.get_content_maintype() == "image"]
    assert world.inbox.received[0]["tls"] is True
    assert (world.tmp / "html" / "latest.html").exists()


def test_a_restart_runs_the_missed_runs_once_coalesced_and_loses_none(world: World) -> None:
    config = world.config(collect="@every 3s", digest="@every 3s")
    proc = world.start(config)
    try:
        wait_for("a digest that sent", lambda: any('"sent"' in (r["detail"] or "")
                                                   for r in world.runs("digest", "ok")), proc=proc)
    finally:
        code, err = stop(proc)
    assert code == 0, err[-3000:]
    stopped_at = datetime.now(UTC)
    last_before = max(datetime.fromisoformat(r["scheduled_for"]) for r in world.runs("digest"))
    time.sleep(10)  # three or more digest and collect fire times pass while the daemon is down
    proc = world.start(config)
    try:
        wait_for("the catch-up digest", lambda: [r for r in world.runs("digest")
                                                 if datetime.fromisoformat(r["scheduled_for"]) > last_before
                                                 and r["status"] == "ok"], proc=proc)
    finally:
        code, err = stop(proc)
    assert code == 0, err[-3000:]
    resumed = next(datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
                   for line in map(json.loads, err.splitlines()) if line.get("event") == "daemon_start")
    caught_up = [r for r in world.runs("digest")
                 if last_before < datetime.fromisoformat(r["scheduled_for"]) <= resumed]
    # Three or more fire times passed while the daemon was down: one run for them all (coalesced), not none.
    assert len(caught_up) == 1, [dict(r) for r in caught_up]
    assert datetime.fromisoformat(caught_up[0]["scheduled_for"]) > stopped_at + timedelta(seconds=5)  # the latest
    assert all(r["status"] in ("ok", "skipped") for r in world.runs())  # nothing left running or interrupted
    sent = [d for d in world.deliveries() if d["status"] == "sent"]
    assert len(world.slack.posts) == sum(d["channel"] == "slack" for d in sent)


def test_sigterm_during_a_delivery_waits_for_it_and_sends_it_once(world: World) -> None:
    world.slack.delay = 3.0  # each webhook post takes 3 s to answer: SIGTERM comes while one is in flight
    proc = world.start(world.config(collect="@every 2s", digest="@every 6s"))
    try:
        wait_for("the first webhook post", lambda: world.slack.posts, proc=proc)
    finally:
        code, err = stop(proc)
    assert code == 0, err[-3000:]
    digests = world.runs("digest")
    assert [r["status"] for r in digests] == ["ok"], [dict(r) for r in digests]
    sent = [d for d in world.deliveries() if d["status"] == "sent"]
    assert sum(d["channel"] == "slack" for d in sent) == len(world.slack.posts) == 3  # everyone + two teams, once
    assert len(world.inbox.received) == 1
    assert "clean=True" in err
