"""costagent.yaml's ``audit`` and ``recommenders`` sections: defaults, overrides reaching the recommenders'
dataclasses, errors naming the key and its line, flags over the file, and an audit honouring ``enabled``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import click
import pandas as pd
import pytest
import yaml

from agent.audit_config import AUDIT_KEYS, RECOMMENDER_KEYS, SECTIONS, AuditSettings
from agent.cli import DEMO_PERIOD, audit_inputs
from agent.config import load
from providers.errors import ConfigurationError
from providers.model import Instrument
from recommenders import RECOMMENDERS, Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "infra" / "examples" / "costagent.yaml"

FULL = """\
audit:
  lookback: 3d
  period: 15
  live_prices: false
  billing: [exports/*.parquet, s3://bills/cur/]
recommenders:
  enabled: [stop, spot]
  kpi_tag: cost-center
  idle:
    gpu_util_max_pct: 2.5
    min_idle_minutes: 90
  rightsize:
    min_monthly_savings_usd: "40.5"
  autoscale:
    target_util_pct: 70
  commitment:
    term_years: [1, 3]
    instruments: [aws-reserved-instance, gcp-committed-use-discount]
"""


def write(tmp_path: Path, text: str, name: str = "costagent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_without_the_sections_an_audit_runs_on_the_recommenders_own_defaults():
    audit = load(None, env={}).audit
    assert audit == AuditSettings() and audit.recommenders == Settings()
    assert (audit.lookback, audit.period, audit.live_prices, audit.billing) == (
        timedelta(days=14), timedelta(minutes=5), True, ())


@pytest.fixture
def full(tmp_path):
    return load(write(tmp_path, FULL), env={}).audit


def test_the_audit_window_and_inputs_are_read(full):
    assert (full.lookback, full.period, full.live_prices) == (timedelta(days=3), timedelta(minutes=15), False)
    assert full.billing == ("exports/*.parquet", "s3://bills/cur/") and full.configured == set(AUDIT_KEYS)


def test_an_override_reaches_its_dataclass_and_leaves_the_rest_at_the_default(full):
    idle = full.recommenders.idle
    assert (idle.gpu_util_max_pct, idle.min_idle_minutes) == (2.5, 90)
    assert dataclasses.replace(idle, gpu_util_max_pct=5.0, min_idle_minutes=60) == Settings().idle
    assert full.recommenders.stop == Settings().stop and full.recommenders.kpi_tag == "cost-center"


def test_a_dollar_threshold_is_the_exact_decimal_written(full):
    value = full.recommenders.rightsize.min_monthly_savings_usd
    assert isinstance(value, Decimal) and str(value) == "40.5"


def test_a_whole_number_is_accepted_where_a_float_is_expected(full):
    target = full.recommenders.autoscale.target_util_pct
    assert target == 70.0 and isinstance(target, float)


def test_commitment_terms_and_instruments_are_read_as_tuples_of_their_types(full):
    commitment = full.recommenders.commitment
    assert commitment.term_years == (1, 3)
    assert commitment.instruments == (Instrument.AWS_RI, Instrument.GCP_CUD)


def test_enabled_takes_the_kind_stop_for_gpu_idle(full):
    assert full.recommenders.enabled == ("gpu-idle", "spot")


def test_toml_carries_the_same_sections(tmp_path):
    text = '[audit]\nlookback = "7d"\n\n[recommenders.idle]\ngpu_util_max_pct = 2.5\n'
    audit = load(write(tmp_path, text, "costagent.toml"), env={}).audit
    assert audit.lookback == timedelta(days=7) and audit.recommenders.idle.gpu_util_max_pct == 2.5


@pytest.mark.parametrize("old, new, words", [
    ("    gpu_util_max_pct: 2.5", "    gpu_util_max: 2.5", "line 10: unknown key recommenders.idle.gpu_util_max"),
    ("  idle:", "  idel:", "line 9: unknown key recommenders.idel"),
    ("    min_idle_minutes: 90", "    min_idle_minutes: 1.5", "line 11: recommenders.idle.min_idle_minutes = 1.5 must "
                                                             "be a whole number"),
    ("    gpu_util_max_pct: 2.5", "    gpu_util_max_pct: low", "line 10: recommenders.idle.gpu_util_max_pct = 'low' "
                                                               "must be a number"),
    ("    gpu_util_max_pct: 2.5", "    gpu_util_max_pct: true", "line 10: recommenders.idle.gpu_util_max_pct = True "
                                                                "must be a number"),
    ("    gpu_util_max_pct: 2.5", "    gpu_util_max_pct: -1", "line 10: recommenders.idle.gpu_util_max_pct = -1 "
                                                              "must be >= 0"),
    ('"40.5"', '"forty"', "line 13: recommenders.rightsize.min_monthly_savings_usd = 'forty' must be a number"),
    ("  enabled: [stop, spot]", "  enabled: [stop, idle]", "line 7: recommenders.enabled[1] = 'idle' is not a "
                                                           "recommender"),
    ("  kpi_tag: cost-center", "  kpi_tag: ''", "line 8: recommenders.kpi_tag must be a tag name"),
    ("    term_years: [1, 3]", "    term_years: [1, 2]", "line 17: recommenders.commitment.term_years[1] = 2 is not "
                                                         "a commitment term"),
    ("aws-reserved-instance", "aws-spot", "line 18: recommenders.commitment.instruments[0] = 'aws-spot' is not one "
                                          "of the Instrument values"),
    ("  lookback: 3d", "  lookback: a fortnight", "line 2: audit.lookback = 'a fortnight' is not a duration"),
    ("  lookback: 3d", "  lookback: 20m", "line 2: audit.lookback must cover at least two periods"),
    ("  lookback: 3d", "  lookback: 90d", "line 2: audit.lookback at most 63 days"),
    ("  period: 15", "  period: 90s", "line 3: audit.period must be a whole number of minutes"),
    ("  live_prices: false", "  live_prices: maybe", "line 4: audit.live_prices must be true or false"),
    ("  billing: [exports/*.parquet, s3://bills/cur/]", "  billing: [3]", "line 5: audit.billing must be a list"),
])
def test_a_bad_value_names_its_key_and_line(tmp_path, old, new, words):
    assert old in FULL
    path = write(tmp_path, FULL.replace(old, new))
    with pytest.raises(ConfigurationError) as err:
        load(path, env={})
    assert words in err.value.one_line() and str(path) in err.value.one_line()


def test_an_unknown_key_is_refused_with_the_known_keys_as_hint(tmp_path):
    with pytest.raises(ConfigurationError) as err:
        load(write(tmp_path, "recommenders:\n  stop:\n    min_streak: 12\n"), env={})
    assert err.value.hint == "recommenders.stop keys: min_streak_hours, prior_margin"


def test_a_bad_enabled_name_lists_the_recommenders(tmp_path):
    with pytest.raises(ConfigurationError) as err:
        load(write(tmp_path, "recommenders:\n  enabled: [everything]\n"), env={})
    assert all(name in err.value.hint for name in RECOMMENDERS)


def test_the_example_file_shows_every_key_of_both_sections():
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert set(example["audit"]) == AUDIT_KEYS and set(example["recommenders"]) == RECOMMENDER_KEYS
    defaults = Settings()
    for section in SECTIONS:
        fields = {f.name for f in dataclasses.fields(getattr(defaults, section))}
        assert set(example["recommenders"][section]) == fields, section


# ------------------------------------------------------------------------------- flags over the file


def config_with(tmp_path: Path, text: str):
    return load(write(tmp_path, text), env={})


def test_flags_win_over_the_file(tmp_path):
    config = config_with(tmp_path, FULL)
    got = audit_inputs(config, timedelta(days=7), timedelta(minutes=5), True, ("cur.csv",), demo=False)
    assert (got.lookback, got.period, got.live_prices, got.billing) == (
        timedelta(days=7), timedelta(minutes=5), True, ("cur.csv",))


def test_the_file_wins_over_the_defaults(tmp_path):
    got = audit_inputs(config_with(tmp_path, FULL), None, None, None, (), demo=False)
    assert (got.lookback, got.period, got.live_prices, got.billing) == (
        timedelta(days=3), timedelta(minutes=15), False, ("exports/*.parquet", "s3://bills/cur/"))


def test_the_demo_keeps_its_hourly_period_unless_the_file_sets_one(tmp_path):
    unset = audit_inputs(config_with(tmp_path, "audit:\n  lookback: 5d\n"), None, None, None, (), demo=True)
    assert unset.period == DEMO_PERIOD
    assert audit_inputs(config_with(tmp_path, FULL), None, None, None, (), demo=True).period == timedelta(minutes=15)


def test_a_window_broken_by_a_flag_names_the_files_key_it_clashes_with(tmp_path):
    config = config_with(tmp_path, FULL)
    with pytest.raises(click.BadParameter) as err:
        audit_inputs(config, None, timedelta(days=2), None, (), demo=False)
    assert "audit.lookback" in err.value.format_message() and str(config.source) in err.value.format_message()


# ----------------------------------------------------------------------------- an audit on an emulator


@pytest.fixture(scope="module")
def aws_env():
    """A moto server with an idle instance (a stop) and a four-GPU box using one GPU (a right-size, once the
    three days seeded are enough telemetry for one)."""
    from providers.sandbox import fleet as sim
    from providers.sandbox import moto_server
    from providers.sandbox.aws_seed import seed_fleet

    fleet = [sim._i("idle-a10", "us-east-1", "g5.xlarge", 1, 22.35, sim.IDLE_ALL),
             sim._i("multi-gpu-dev", "us-east-1", "g5.12xlarge", 4, 22.35, sim.ONE_BUSY)]
    with moto_server(("us-east-1",)) as server:
        seed_fleet(server.session(), fleet, pd.Timestamp(datetime.now(timezone.utc)), timedelta(days=3),
                   timedelta(minutes=15), endpoint_url=server.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COSTAGENT_"))}
        env.update(AWS_ENDPOINT_URL=server.url, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_DEFAULT_REGION="us-east-1")
        yield env


def audited_kinds(env: dict[str, str], config: Path) -> set[str]:
    run = subprocess.run([sys.executable, "-m", "agent.cli", "audit", "--config", str(config), "--output", "json"],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    return {r["kind"] for r in json.loads(run.stdout)["recommendations"]}


BASE = "audit:\n  lookback: 3d\n  live_prices: false\nrecommenders:\n  rightsize: {min_data_hours: 24}\n"


@pytest.mark.parametrize("enabled, kinds", [
    ("[stop]", {"stop"}),  # the right-size the file's threshold allows is not made
    ("[rightsize]", {"rightsize"}),  # ... and is, by that threshold, when enabled (and no stop then)
])
def test_an_audit_runs_only_the_enabled_recommenders_by_the_files_thresholds(aws_env, tmp_path, enabled, kinds):
    assert audited_kinds(aws_env, write(tmp_path, BASE + f"  enabled: {enabled}\n")) == kinds
