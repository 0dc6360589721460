"""``costagent audit`` as a user runs it: a subprocess, pointed at a local moto server by AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

from providers.sandbox import moto_server
from providers.sandbox import fleet as sim
from providers.sandbox.aws_seed import seed_fleet
from reports.model import SCHEMA_VERSION

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "reports" / "schema" / "audit-report.v1.json").read_text())
FLEET = [
    sim._i("idle-a10", "us-east-1", "g5.xlarge", 1, 22.35, sim.IDLE_ALL, expect="stop"),
    sim._i("trainer", "us-east-1", "g5.12xlarge", 4, 22.35, sim.TRAINING),
    sim._i("no-agent", "us-east-1", "g4dn.xlarge", 1, 16, sim.NO_AGENT, expect_gap=True),
    sim._i("parked", "us-east-1", "g5.2xlarge", 1, 22.35, sim.STOPPED),
    sim._i("elsewhere", "us-west-2", "g5.xlarge", 1, 22.35, sim.IDLE_ALL),
]


@pytest.fixture(scope="module")
def cloud():
    with moto_server(("us-east-1", "us-west-2")) as server:
        seeded = seed_fleet(server.session(), FLEET, pd.Timestamp(datetime.now(timezone.utc)), timedelta(days=3),
                            timedelta(minutes=15), endpoint_url=server.url)
        yield server, seeded


def costagent(*args: str, endpoint: str, timeout: int = 120, region: str | None = "us-east-1") -> subprocess.CompletedProcess[str]:
    """The CLI with a clean AWS environment: only the endpoint, dummy keys and (unless None) a default region."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    if region is not None:
        env["AWS_DEFAULT_REGION"] = region
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def json_run(cloud):
    server, _ = cloud
    return costagent("audit", "--cloud", "aws", "--region", "us-east-1", "--lookback", "3d", "--output", "json",
                     endpoint=server.url)


def test_json_output_follows_the_published_schema(json_run):
    assert json_run.returncode == 0, json_run.stderr
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(json_run.stdout))


def test_idle_instance_is_stopped_and_the_busy_one_left_alone(cloud, json_run):
    _, seeded = cloud
    report = json.loads(json_run.stdout)
    by_resource = {r["resource_id"]: r for r in report["recommendations"]}
    assert set(by_resource) == {seeded.ids["idle-a10"]}
    rec = by_resource[seeded.ids["idle-a10"]]
    assert rec["kind"] == "stop" and rec["instance_type"] == "g5.xlarge" and rec["region"] == "us-east-1"
    assert rec["monthly_savings_usd"] == pytest.approx(1.006 * 730, rel=0.01)  # catalog on-demand, us-east-1
    assert rec["evidence"]["price"]["source"].startswith("catalog")


def test_unmeasured_instance_is_a_gap_with_a_hint(cloud, json_run):
    _, seeded = cloud
    gaps = [g for g in json.loads(json_run.stdout)["gaps"] if g["resource_id"] == seeded.ids["no-agent"]]
    assert len(gaps) == 1 and "CloudWatch agent" in gaps[0]["hint"]


def test_only_the_requested_region_is_read(cloud, json_run):
    _, seeded = cloud
    report = json.loads(json_run.stdout)
    assert report["regions"] == ["us-east-1"]
    assert seeded.ids["elsewhere"] not in json_run.stdout


def test_repeated_region_flags_audit_both(cloud):
    server, seeded = cloud
    run = costagent("audit", "--region", "us-east-1", "--region", "us-west-2", "--lookback", "3d", "--output", "json",
                    endpoint=server.url)
    ids = {r["resource_id"] for r in json.loads(run.stdout)["recommendations"]}
    assert ids == {seeded.ids["idle-a10"], seeded.ids["elsewhere"]}


def test_markdown_to_a_file(cloud, tmp_path):
    server, _ = cloud
    out = tmp_path / "audit.md"
    run = costagent("audit", "--lookback", "3d", "--out", str(out), endpoint=server.url)
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert out.read_text().startswith("# costagent audit")


def test_piped_output_defaults_to_json(cloud):
    server, _ = cloud
    run = costagent("audit", "--lookback", "3d", endpoint=server.url)
    assert json.loads(run.stdout)["schema_version"] == SCHEMA_VERSION == "1.2"


def test_bad_period_is_a_usage_error(cloud):
    server, _ = cloud
    run = costagent("audit", "--period", "90s", endpoint=server.url)
    assert run.returncode == 2 and "--period" in run.stderr


def test_no_region_anywhere_is_a_usage_error(cloud):
    server, _ = cloud
    env_run = costagent("audit", endpoint=server.url)
    assert env_run.returncode == 0  # AWS_DEFAULT_REGION is set by the helper
    run = costagent("audit", endpoint=server.url, region=None)
    assert run.returncode == 2 and "region" in run.stderr


class _Deny(BaseHTTPRequestHandler):
    """An endpoint that answers every EC2/CloudWatch call the way AWS refuses a role without permission."""

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = (b"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized"
                b" to perform this operation.</Message></Error></Errors><RequestID>r-1</RequestID></Response>")
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


def test_unreadable_inventory_exits_3_and_still_reports_the_gap():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Deny)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        run = costagent("audit", "--output", "json", "--no-live-prices",
                        endpoint=f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert run.returncode == 3, run.stderr
    report = json.loads(run.stdout)
    inventory_gaps = [g for g in report["gaps"] if g["what"] == "inventory"]
    assert inventory_gaps and "UnauthorizedOperation" in inventory_gaps[0]["reason"]
    assert "could not read" in run.stderr


def test_unknown_profile_is_a_usage_error_naming_it(cloud):
    server, _ = cloud
    run = costagent("audit", "--profile", "no-such-profile", "--region", "us-east-1", endpoint=server.url)
    assert run.returncode == 2 and "no-such-profile" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_malformed_region_is_a_usage_error(cloud):
    server, _ = cloud
    run = costagent("audit", "--region", "nowhere", endpoint=server.url)
    assert run.returncode == 2 and "--region" in run.stderr


def test_a_region_the_endpoint_cannot_serve_is_a_gap_and_exit_3(cloud):
    server, _ = cloud
    run = costagent("audit", "--region", "xx-nowhere-1", "--output", "json", "--no-live-prices", endpoint=server.url)
    assert run.returncode == 3, run.stderr
    gaps = json.loads(run.stdout)["gaps"]
    assert any(g["what"] == "inventory" and g["region"] == "xx-nowhere-1" for g in gaps)


def test_the_read_only_policy_allows_every_call_an_audit_makes(json_run):
    policy = json.loads((Path(__file__).resolve().parents[2] / "infra" / "aws" / "audit-readonly-policy.json").read_text())
    allowed = {action for statement in policy["Statement"] for action in statement["Action"]}
    made = {name.replace(".", ":", 1) for name in json.loads(json_run.stdout)["api_calls"]}
    assert made, "the audit made no calls?"
    assert made <= allowed, f"calls the policy does not allow: {sorted(made - allowed)}"
    assert all(a.split(":")[1].startswith(("Describe", "List", "Get")) for a in allowed)


DATA = Path(__file__).resolve().parents[1] / "data" / "billing"


def test_billing_exports_are_read_and_their_bad_rows_reported(cloud):
    server, _ = cloud
    run = costagent("audit", "--region", "us-east-1", "--lookback", "3d", "--output", "json",
                    "--billing", str(DATA / "focus_sample.csv.gz"), "--billing", str(DATA / "focus_bad_rows.csv"),
                    endpoint=server.url)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    billing = report["summary"]["billing"]
    assert billing["bad_rows"] == 4 and billing["bad_examples"][0]["file"].endswith("focus_bad_rows.csv")
    # the FOCUS sample's known total (corpus INDEX) plus the readable rows of the bad-rows file
    assert round(billing["billed_cost_usd"], 6) == round(20.52022672899 + 2.5150004, 6)
    assert any(g["what"] == "billing" and "4 of" in g["reason"] for g in report["gaps"])


def test_an_unreadable_billing_path_exits_3_and_still_reports(cloud, tmp_path):
    server, _ = cloud
    run = costagent("audit", "--region", "us-east-1", "--lookback", "3d", "--output", "json",
                    "--billing", str(tmp_path / "missing.csv"), endpoint=server.url)
    assert run.returncode == 3
    assert "missing.csv" in run.stderr
    assert json.loads(run.stdout)["summary"]["billing"] is None


def test_live_prices_keep_the_catalog_where_the_apis_answer_nonsense(cloud):
    # moto has no Pricing or Savings Plans API and answers spot history with 0.00001 dated 2006
    server, _ = cloud
    run = costagent("prices", "--live", "--type", "g5.xlarge", "--region", "us-east-1", "--output", "json",
                    endpoint=server.url)
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)["prices"]
    assert row["on_demand"]["hourly_usd"] == "1.006" and row["spot"]["source"].startswith("catalog:")
    assert {c["term_years"] for c in row["commitments"]} == {1, 3}  # the shipped RI rates stand
