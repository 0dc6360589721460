"""The digest model: ranking, totals that count a resource once, routing by team/owner, noise controls."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from reports.digest import CHANGED, NEW, UNCHANGED, Digest, Mute, quiet, route
from tests.reports.digest_sample import HOSTILE_TEAM, NOW, empty_digest, full_digest


def test_findings_are_ranked_by_savings():
    savings = [f.monthly_savings_usd for f in full_digest().findings]
    assert savings == sorted(savings, reverse=True)


def test_total_counts_each_resource_once_at_its_largest_finding():
    d = full_digest()
    first = d.findings[0]
    doubled = replace(d, findings=d.findings + (replace(first, id="other", kind="schedule",
                                                         monthly_savings_usd=Decimal("5.00")),))
    assert doubled.monthly_savings_usd == d.monthly_savings_usd == Decimal("16768.27")


def test_savings_by_team_puts_untagged_under_none():
    assert full_digest().savings_by("team") == {HOSTILE_TEAM: Decimal("10162.40"), "ml": Decimal("4535.73"),
                                                "(none)": Decimal("2070.14")}


def test_route_gives_each_team_its_findings_and_its_applied_and_due_items():
    routed = route(full_digest(), by="owner")
    assert set(routed) == {"owner:alice", "owner:bob", "owner:(none)"}
    alice = routed["owner:alice"]
    assert {f.resource_id for f in alice.findings} == {"i-00000000000000001", "multi-gpu-dev"}
    assert [a.resource_id for a in alice.applied] == ["i-00000000000000001"]
    assert [d.resource_id for d in routed["owner:bob"].due] == ["i-00000000000000002"]
    assert routed["owner:(none)"].applied == ()


def test_quiet_drops_small_and_muted_findings_and_expired_mutes_do_nothing():
    d = full_digest()
    mutes = [Mute(until=NOW + timedelta(days=1), kind="spot"),
             Mute(until=NOW - timedelta(seconds=1), resource_id=d.findings[0].resource_id)]
    kept = quiet(d, min_savings_usd=Decimal("1000"), mutes=mutes)
    assert [f.kind for f in kept.findings] == ["stop", "rightsize"]


def test_a_mute_with_no_target_mutes_nothing():
    d = full_digest()
    assert quiet(d, mutes=[Mute(until=NOW + timedelta(days=1))]).findings == tuple(
        replace(f, status=NEW) for f in d.findings)


def test_only_new_or_changed_compares_with_the_last_digest():
    d = full_digest()
    a, b, c, e = d.findings
    previous = {a.id: a.monthly_savings_usd, b.id: b.monthly_savings_usd * Decimal("0.5"),
                c.id: c.monthly_savings_usd * Decimal("1.05")}
    marked = {f.id: f.status for f in quiet(d, previous=previous).findings}
    assert marked == {a.id: UNCHANGED, b.id: CHANGED, c.id: UNCHANGED, e.id: NEW}
    assert {f.id for f in quiet(d, previous=previous, only_new_or_changed=True).findings} == {b.id, e.id}


def test_an_empty_digest_is_empty_and_a_bad_heatmap_is_refused():
    assert empty_digest().is_empty and empty_digest().monthly_savings_usd == 0
    with pytest.raises(ValueError, match="168"):
        Digest(generated_at=NOW, window_start=NOW, window_end=NOW, clouds=(), idle_heatmap=(1.0,) * 24)
