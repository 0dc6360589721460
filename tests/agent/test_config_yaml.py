"""costagent.yaml: the same sections as the TOML file, errors naming the key and its line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.config import load
from agent.guards import Mode
from providers.errors import ConfigurationError

GOOD = """\
aws:
  regions: [us-east-1]
gcp:
  projects: [ml-prod]
  endpoints:
    compute: http://127.0.0.1:8085
apply:
  mode: apply
  max_actions_per_run: 3
  windows:
    - days: [Sat]
      start: "01:00"
      end: "05:00"
      timezone: Europe/Berlin
state:
  url: sqlite:///state.db
"""


def write(tmp_path, text, name="costagent.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_reads_the_same_sections_as_toml(tmp_path):
    config = load(write(tmp_path, GOOD), env={})
    assert config.aws.regions == ("us-east-1",) and config.gcp.endpoints == {"compute": "http://127.0.0.1:8085"}
    assert config.apply.policy.mode is Mode.APPLY and config.apply.policy.max_actions_per_run == 3
    assert str(config.apply.policy.windows[0]) == "Sat 01:00-05:00 Europe/Berlin"
    assert config.state_url == "sqlite:///state.db" and config.apply.policy.cooldown == timedelta(hours=24)


@pytest.mark.parametrize("text, words", [
    (GOOD.replace("mode: apply", "mode: yolo"), "line 8: apply.mode = 'yolo' is not a mode"),
    (GOOD.replace("days: [Sat]", "days: [Caturday]"), "line 11: apply.windows[0].days"),
    (GOOD.replace("    compute:", "    compoot:"), "line 6: unknown service gcp.endpoints.compoot"),
    (GOOD + "colour: blue\n", "line 17: unknown section [colour]"),
    (GOOD.replace("  max_actions_per_run: 3", "  max_actions_per_run: 3\n  grace: 2"), "line 10: unknown key apply.grace"),
    (GOOD.replace("  max_actions_per_run: 3", "  max_actions_per_run: 3\n  mode: off"), "key 'mode' given twice"),
    ("aws: [oops\n", "not valid YAML"),
    ("- aws\n", "the top level must be a mapping"),
])
def test_an_error_names_the_key_and_its_line(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as err:
        load(path, env={})
    assert words in err.value.one_line() and str(path) in err.value.one_line()


def test_toml_errors_name_the_line_too(tmp_path):
    path = write(tmp_path, '[aws]\nregions = ["us-east-1"]\n\n[apply]\nmode = "yolo"\n', "costagent.toml")
    with pytest.raises(ConfigurationError, match="line 5: apply.mode"):
        load(path, env={})


def test_an_empty_yaml_file_is_the_defaults(tmp_path):
    assert load(write(tmp_path, "# nothing yet\n"), env={}).apply.policy.mode is Mode.DRY_RUN


def test_config_validate_prints_the_policy_and_hides_the_database_password(tmp_path):
    from click.testing import CliRunner

    from agent.cli import main

    path = write(tmp_path, GOOD.replace("sqlite:///state.db", "postgresql://costagent:s3cret@db/costagent"))
    result = CliRunner().invoke(main, ["config", "validate", "--config", str(path)], env={})
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "mode=apply" in result.output and "s3cret" not in result.output


def test_config_validate_names_the_key_and_line_and_exits_2(tmp_path):
    from click.testing import CliRunner

    from agent.cli import main

    path = write(tmp_path, GOOD.replace("mode: apply", "mode: yolo"))
    result = CliRunner().invoke(main, ["config", "validate", "--config", str(path)], env={})
    assert result.exit_code == 2 and "line 8: apply.mode" in result.output
