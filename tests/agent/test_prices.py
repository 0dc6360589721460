"""``costagent prices`` as a user runs it (shipped catalog; live refresh is tested per cloud)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal

from agent.prices import price_rows
from providers.errors import ProviderError
from providers.model import Cloud, PriceQuote, PricingModel

AT = datetime(2026, 11, 23, tzinfo=timezone.utc)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", "prices", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_json_lists_every_rate_with_its_source_and_date():
    run = _run("--cloud", "gcp", "--type", "a2-highgpu-1g", "--region", "us-central1", "--output", "json")
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)["prices"]
    assert row["on_demand"]["hourly_usd"] == "3.673385"  # GCP's published a2-highgpu-1g price in us-central1
    assert row["gpu"] == {"model": "A100", "count": 1, "memory_gib": 40.0}
    assert {c["term_years"] for c in row["commitments"]} == {1, 3}
    assert all(c["source"] and c["as_of"] for c in row["commitments"])


def test_table_numbers_its_sources_under_the_rows():
    run = _run("--type", "p4d.24xlarge", "--region", "us-east-1", "--output", "table")
    assert run.returncode == 0, run.stderr
    assert "21.957642 [1]" in run.stdout and "\n[1] catalog:" in run.stdout


def test_an_unknown_type_is_a_usage_error_naming_it():
    run = _run("--cloud", "azure", "--type", "Standard_Nope")
    assert run.returncode == 2
    assert "Standard_Nope" in run.stderr and run.stdout == ""


def test_a_live_price_replaces_the_shipped_one_and_keeps_the_band():
    def live(region, types, at):
        return [PriceQuote(Cloud.AWS, region, t, PricingModel.SPOT, Decimal("0.5"), "ec2-spot-price-history", at)
                for t in types], []

    (row,) = price_rows(Cloud.AWS, AT, "g5.xlarge", "us-east-1", live)
    assert row.spot.hourly_usd == Decimal("0.5") and row.spot.interruption == ">20%"
    assert row.on_demand.hourly_usd == Decimal("1.006")  # not refreshed: the shipped figure stands


def test_a_failing_live_api_leaves_the_shipped_prices():
    def down(region, types, at):
        raise ProviderError("pricing unreachable")

    (row,) = price_rows(Cloud.AWS, AT, "g5.xlarge", "us-east-1", down)
    assert row.on_demand.source.startswith("catalog:")
