"""Fleet KPIs: $ per busy GPU-hour, idle dollars, energy and carbon per team (hand-built snapshots)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from providers import carbon
from providers.hardware import gpu_model
from providers.model import Accelerators, Metric
from recommenders.idle import IdleSettings, classify
from recommenders.kpis import UNTAGGED, fleet_kpis
from tests.builders import HOURLY, FrameBuilder, resource, snapshot, times, window

HOUR = timedelta(hours=1)
WIN = window(days=14, period=HOUR)
STAMPS = times(WIN, HOUR)
N = len(STAMPS)  # 336 hours, all known


def box(name: str, team: str | None = None, region: str = "us-east-1", gpus: int = 1, model: str = "A10G"):
    res = resource(name, gpus=gpus, region=region)
    tags = {"Name": name, **({"team": team} if team else {})}
    return replace(res, tags=tags, accelerators=Accelerators(model, gpus, 22.35))


def kpis(fleet, power=None, hourly=HOURLY, tag_key="team"):
    """fleet: (resource, utilization per hour or list per GPU); power: (resource, watts per GPU) pairs."""
    builder = FrameBuilder()
    for res, util in fleet:
        builder.gpu_util(res, STAMPS, util)
    for res, watts in power or ():
        for gpu in range(res.accelerators.count):
            builder.add(res, Metric.GPU_POWER, STAMPS, np.full(N, watts), gpu=gpu)
    resources = [r for r, _ in fleet]
    snap = snapshot(resources, builder.frame(), WIN, HOUR, hourly=hourly)
    settings = IdleSettings()
    return fleet_kpis(snap, classify(snap.usage, resources, snap.window, settings), settings, tag_key)


def half_busy() -> np.ndarray:
    """Busy at 80 % the first week, idle the second: 168 busy and 168 idle hours."""
    return np.where(np.arange(N) < N // 2, 80.0, 0.0)


def test_usd_per_busy_gpu_hour_of_a_half_busy_gpu_is_twice_its_price():
    k = kpis([(box("a", "ml"), half_busy())])

    [team] = k.teams
    assert team.gpu_hours == pytest.approx(336.0)
    assert team.busy_gpu_hours == pytest.approx(168.0)
    assert team.cost_usd == Decimal("338.02")  # 1.006 x 336
    assert team.idle_usd == Decimal("169.01")  # 1.006 x 168
    assert team.usd_per_busy_gpu_hour == (Decimal("338.02") / 168).quantize(Decimal("0.0001"))  # 2.0120


def test_busy_gpu_hours_count_each_gpu_of_a_multi_gpu_box():
    """4 GPUs, one busy all the time: 336 busy GPU-hours of 1,344."""
    big = box("big", "ml", gpus=4)
    k = kpis([(big, [np.full(N, 90.0)] + [np.zeros(N)] * 3)])
    assert k.total.gpu_hours == pytest.approx(4 * 336.0)
    assert k.total.busy_gpu_hours == pytest.approx(336.0)


def test_team_kpis_sum_to_the_total():
    fleet = [(box("a", "ml"), half_busy()), (box("b", "ml"), np.full(N, 50.0)), (box("c", "search"), np.zeros(N)),
             (box("d"), np.full(N, 20.0)), (box("e", "search", region="eu-west-1", gpus=2), [half_busy(), np.zeros(N)])]
    k = kpis(fleet, power=[(fleet[1][0], 140.0)])

    assert [t.team for t in k.teams] == ["ml", "search", UNTAGGED]  # by cost, highest first
    assert k.total.team == "(all)"
    assert sum(t.instances for t in k.teams) == k.total.instances == 5
    assert sum(t.gpus for t in k.teams) == k.total.gpus == 6
    assert sum(t.cost_usd for t in k.teams) == k.total.cost_usd
    assert sum(t.idle_usd for t in k.teams) == k.total.idle_usd
    for field in ("gpu_hours", "busy_gpu_hours", "energy_kwh", "co2e_kg"):
        assert sum(getattr(t, field) for t in k.teams) == pytest.approx(getattr(k.total, field)), field


def test_tag_key_is_matched_in_any_case():
    res = replace(box("a"), tags={"Name": "a", "Team": "vision"})
    assert [t.team for t in kpis([(res, half_busy())]).teams] == ["vision"]


def test_energy_is_measured_where_power_is_published_and_estimated_elsewhere():
    measured, estimated, unknown = box("m", "ml"), box("e", "ml"), box("u", "ml", model="Z9000")
    k = kpis([(measured, np.full(N, 50.0)), (estimated, np.full(N, 50.0)), (unknown, np.full(N, 50.0))],
             power=[(measured, 150.0)])

    a10g = gpu_model("A10G")
    expected_w = a10g.power_w(0.5)  # 60 W idle + (270 - 60) x 0.5 = 165 W on a 300 W board
    assert expected_w == pytest.approx(165.0)
    assert k.total.energy_kwh == pytest.approx((150.0 + expected_w) * 336 / 1000)
    assert (k.energy_measured_instances, k.energy_estimated_instances, k.energy_unknown_instances) == (1, 1, 1)


def test_measured_power_counts_every_gpu():
    big = box("big", "ml", gpus=4)
    k = kpis([(big, [np.full(N, 10.0)] * 4)], power=[(big, 100.0)])
    assert k.total.energy_kwh == pytest.approx(4 * 100.0 * 336 / 1000)


def test_carbon_uses_the_regions_grid_factor_and_the_clouds_pue():
    east, ireland = box("east", "ml"), box("ireland", "ml", region="eu-west-1")
    k = kpis([(east, np.zeros(N)), (ireland, np.zeros(N))], power=[(east, 100.0), (ireland, 100.0)])

    kwh = 100.0 * 336 / 1000
    assert k.total.co2e_kg == pytest.approx(kwh * 1.135 * (0.379069 + 0.2786))
    assert k.factors["grid"]["aws/eu-west-1"]["kg_co2e_per_kwh"] == 0.2786
    assert "eGRID2020" in k.factors["grid"]["aws/us-east-1"]["source"]
    assert k.factors["pue"]["aws"]["value"] == 1.135
    assert k.factors["no_grid_factor"] == []


def test_a_region_without_a_factor_has_no_carbon_and_says_so():
    k = kpis([(box("far", "ml", region="mx-central-1"), np.zeros(N))], power=None)
    assert k.total.energy_kwh > 0
    assert k.total.co2e_kg == 0.0
    assert k.factors["no_grid_factor"] == ["aws/mx-central-1"]


def test_shipped_factors_cover_every_catalog_region():
    import csv
    from importlib import resources

    text = (resources.files("providers") / "data" / "aws_gpu_catalog.csv").read_text(encoding="utf-8")
    regions = {row["region"] for row in csv.DictReader(text.splitlines())}
    assert regions <= set(carbon.regions("aws"))
    assert all(carbon.grid_factor("aws", r).source for r in regions)


def test_unpriced_instances_add_no_cost_and_stay_out_of_the_rate():
    priced, unpriced = box("p", "ml"), box("u", "ml", region="us-west-2")
    builder = FrameBuilder().gpu_util(priced, STAMPS, half_busy()).gpu_util(unpriced, STAMPS, np.full(N, 90.0))
    snap = snapshot([priced], builder.frame(), WIN, HOUR)
    snap = replace(snap, resources=(priced, unpriced))
    settings = IdleSettings()
    k = fleet_kpis(snap, classify(snap.usage, [priced, unpriced], snap.window, settings), settings)

    assert k.total.unpriced_instances == 1
    assert k.total.cost_usd == Decimal("338.02")
    assert k.total.busy_gpu_hours == pytest.approx(168.0 + 336.0)
    assert k.total.usd_per_busy_gpu_hour == (Decimal("338.02") / 168).quantize(Decimal("0.0001"))


def test_no_busy_hours_means_no_rate():
    k = kpis([(box("idle", "ml"), np.zeros(N))])
    assert k.total.busy_gpu_hours == 0.0 and k.total.usd_per_busy_gpu_hour is None
    assert k.total.idle_usd == k.total.cost_usd == Decimal("338.02")


@pytest.mark.parametrize(("cloud", "missing"), [("gcp", set()), ("azure", {"southcentralus"})])
def test_shipped_factors_cover_the_gcp_and_azure_catalog_regions(cloud, missing):
    import csv
    from importlib import resources

    text = (resources.files("providers") / "data" / f"{cloud}_gpu_catalog.csv").read_text(encoding="utf-8")
    regions = {row["region"] for row in csv.DictReader(text.splitlines())}
    assert regions - set(carbon.regions(cloud)) == missing
