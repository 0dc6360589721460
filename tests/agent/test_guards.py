"""The guards of the guarded apply: each refuses in its case with a clear reason, allows otherwise."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from agent.guards import (GUARDS, Candidate, Mode, Policy, RunState, Window, allowed, effective_mode, evaluate,
                          evaluate_run)
from providers.model import Action, Cloud, ResourceRef
from recommenders.model import Kind, Recommendation, Risk

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)  # a Wednesday
REF = ResourceRef(Cloud.AWS, "111122223333", "us-east-1", "i-0abc")
CAN = {"aws": {"stop": None, "resize": None}, "gcp": {"stop": None}}
OPEN = Policy(mode=Mode.APPLY)


class Marks:
    def __init__(self, marks: dict | None = None, notified: set | None = None):
        self.marks, self.told = marks or {}, notified or set()

    def marked_at(self, key, kind):
        return self.marks.get((key, kind))

    def notified(self, key, kind):
        return (key, kind) in self.told


def cand(kind="stop", ref=REF, tags=None, rec="gpu-idle", rid="gpu-idle-1", savings="100"):
    return Candidate(kind, ref, tags or {}, rec, rid, {}, Decimal(savings))


def decide(c=None, policy=OPEN, *, now=NOW, run=None, marks=None, history=None, caps=CAN,
           fresh=lambda c: (True, "still running, still idle"), cli=None):
    return evaluate(c or cand(), policy, now=now, run_state=run or RunState(100), marks=marks or Marks(),
                    history=history or (lambda key: None), capabilities=caps, freshness=fresh, cli_mode=cli)


def verdict(d, guard):
    return next(v for v in d.verdicts if v.guard == guard)


def test_everything_allowed_in_apply_mode_reports_every_guard_in_order():
    d = decide()
    assert [v.guard for v in d.verdicts] == list(GUARDS)
    assert d.allowed and allowed(d.verdicts) and d.would_act and not d.to_mark


def test_every_guard_is_reported_even_after_a_refusal():
    d = decide(policy=Policy(mode=Mode.OFF, regions=frozenset({"eu-west-1"})), caps={})
    assert [v.guard for v in d.verdicts] == list(GUARDS)
    assert {v.guard for v in d.verdicts if not v.allowed} == {"mode", "capability", "scope", "freshness"}


@pytest.mark.parametrize("mode, words", [(Mode.OFF, "mode off"), (Mode.REPORT, "mode report"),
                                         (Mode.DRY_RUN, "mode dry-run")])
def test_only_apply_mode_acts(mode, words):
    d = decide(policy=Policy(mode=mode))
    assert not d.allowed and not verdict(d, "mode").allowed and words in verdict(d, "mode").reason


def test_dry_run_runs_every_other_guard_and_would_act():
    d = decide(policy=Policy(mode=Mode.DRY_RUN))
    assert not d.allowed and d.would_act and verdict(d, "freshness").allowed


def test_report_mode_does_not_re_read_the_cloud():
    calls = []
    d = decide(policy=Policy(mode=Mode.REPORT), fresh=lambda c: calls.append(c) or (True, ""))
    assert calls == [] and "not checked: mode report" in verdict(d, "freshness").reason


def test_cli_flag_and_per_recommender_mode_only_make_it_safer():
    assert effective_mode(Mode.REPORT, {}, "gpu-idle", Mode.APPLY) is Mode.REPORT
    assert effective_mode(Mode.APPLY, {}, "gpu-idle", Mode.DRY_RUN) is Mode.DRY_RUN
    assert effective_mode(Mode.DRY_RUN, {"gpu-idle": Mode.APPLY}, "gpu-idle", None) is Mode.DRY_RUN
    assert effective_mode(Mode.APPLY, {"rightsize": Mode.OFF}, "rightsize", None) is Mode.OFF
    assert decide(cli=Mode.APPLY, policy=Policy(mode=Mode.REPORT)).mode is Mode.REPORT
    assert Mode.parse("dry-run") is Mode.DRY_RUN and Mode.DRY_RUN.label == "dry-run"


def test_capability_refuses_with_the_actuators_reason_and_unknown_kinds():
    caps = {"aws": {"stop": "instance store volumes would be lost"}}
    v = verdict(decide(caps=caps), "capability")
    assert not v.allowed and "instance store volumes would be lost" in v.reason
    v = verdict(decide(cand(kind="schedule"), caps=caps), "capability")
    assert not v.allowed and v.reason == "no actuator for schedule on aws"
    assert verdict(decide(caps=lambda c: None), "capability").allowed


def test_scope_refuses_accounts_and_regions_outside_the_allowlist():
    p = replace(OPEN, accounts=frozenset({"999"}), regions=frozenset({"eu-west-1"}))
    v = verdict(decide(policy=p), "scope")
    assert not v.allowed and "account 111122223333 not allowlisted" in v.reason and "region us-east-1" in v.reason
    p = replace(OPEN, accounts=frozenset({"111122223333"}), regions=frozenset({"us-east-1"}))
    assert verdict(decide(policy=p), "scope").allowed


def test_scope_requires_every_tag():
    p = replace(OPEN, required_tags={"env": "dev", "team": "ml"})
    v = verdict(decide(cand(tags={"env": "dev"}), p), "scope")
    assert not v.allowed and v.reason == "tag team=ml required (has none)"
    assert verdict(decide(cand(tags={"env": "dev", "team": "ml"}), p), "scope").allowed


@pytest.mark.parametrize("tags", [{"costagent:skip": "true"}, {"costagent:skip": ""}, {"costagent-skip": "yes"}])
def test_opt_out_tag_and_gcp_label_form_refuse(tags):
    v = verdict(decide(cand(tags=tags)), "scope")
    assert not v.allowed and "opted out by costagent" in v.reason


def test_opt_out_tag_set_to_false_does_not_opt_out():
    assert verdict(decide(cand(tags={"costagent-skip": "false"})), "scope").allowed


def test_window_refuses_outside_and_allows_inside():
    p = replace(OPEN, windows=(Window(frozenset({2}), time(11), time(13), "UTC"),))  # Wednesdays
    assert verdict(decide(policy=p), "window").allowed
    v = verdict(decide(policy=p, now=NOW + timedelta(hours=2)), "window")
    assert not v.allowed and "outside every maintenance window: Wed 11:00-13:00 UTC" in v.reason
    assert verdict(decide(policy=replace(OPEN, windows=())), "window").reason.startswith("no maintenance window")


def test_window_uses_the_local_time_zone_across_daylight_saving():
    w = Window(frozenset({0}), time(9), time(10), "Europe/Berlin")  # Mondays 09:00 local
    assert w.contains(datetime(2026, 1, 5, 8, 30, tzinfo=timezone.utc))  # CET: 09:30
    assert not w.contains(datetime(2026, 7, 6, 8, 30, tzinfo=timezone.utc))  # CEST: 10:30
    assert w.contains(datetime(2026, 7, 6, 7, 30, tzinfo=timezone.utc))  # CEST: 09:30


def test_window_on_a_dst_change_night_follows_the_wall_clock():
    w = Window(frozenset({6}), time(1), time(3), "America/New_York")  # Sunday 2026-03-08 springs forward at 2:00
    assert w.contains(datetime(2026, 3, 8, 6, 30, tzinfo=timezone.utc))  # 01:30 EST
    assert not w.contains(datetime(2026, 3, 8, 7, 30, tzinfo=timezone.utc))  # 03:30 EDT: one hour later, closed


def test_window_crossing_midnight_belongs_to_the_day_it_starts():
    w = Window(frozenset({5}), time(22), time(2), "Asia/Tokyo")  # Saturday 22:00 - Sunday 02:00 JST
    assert w.contains(datetime(2026, 3, 7, 13, 30, tzinfo=timezone.utc))  # Sat 22:30 JST
    assert w.contains(datetime(2026, 3, 7, 16, 30, tzinfo=timezone.utc))  # Sun 01:30 JST
    assert not w.contains(datetime(2026, 3, 8, 13, 30, tzinfo=timezone.utc))  # Sun 22:30 JST
    assert not w.contains(datetime(2026, 3, 7, 3, 30, tzinfo=timezone.utc))  # Sat 12:30 JST


def test_grace_first_sight_marks_and_refuses():
    d = decide(policy=replace(OPEN, grace_hours=24))
    v = verdict(d, "grace")
    assert d.to_mark and not v.allowed and v.reason == "marked now, act after 2026-03-05T12:00:00+00:00"


def test_grace_does_not_mark_what_is_out_of_scope_or_only_reported():
    assert not decide(cand(tags={"costagent:skip": ""}), replace(OPEN, grace_hours=24)).to_mark
    assert not decide(policy=Policy(mode=Mode.DRY_RUN, grace_hours=24)).to_mark


def test_grace_refuses_before_act_after_and_allows_after_notification():
    key = (REF.key, "stop")
    p = replace(OPEN, grace_hours=24)
    early = decide(policy=p, marks=Marks({key: NOW - timedelta(hours=23)}, {key}))
    assert not early.to_mark and "act after 2026-03-04T13:00:00+00:00" in verdict(early, "grace").reason
    unnotified = verdict(decide(policy=p, marks=Marks({key: NOW - timedelta(hours=25)})), "grace")
    assert not unnotified.allowed and "not notified" in unnotified.reason
    assert decide(policy=p, marks=Marks({key: NOW - timedelta(hours=24)}, {key})).allowed


def test_cooldown_refuses_a_recently_touched_resource():
    p = replace(OPEN, cooldown=timedelta(hours=6))
    v = verdict(decide(policy=p, history=lambda key: NOW - timedelta(hours=1)), "cooldown")
    assert not v.allowed and "cooling down until 2026-03-04T17:00:00+00:00" in v.reason
    assert verdict(decide(policy=p, history=lambda key: NOW - timedelta(hours=7)), "cooldown").allowed


def test_blast_radius_caps_actions_per_run():
    p = replace(OPEN, max_actions_per_run=2)
    v = verdict(decide(policy=p, run=RunState(100, ["a", "b"])), "blast-radius")
    assert not v.allowed and v.reason == "run cap reached: 2 of 2 actions (fleet of 100)"
    assert verdict(decide(policy=p, run=RunState(100, ["a"])), "blast-radius").allowed


def test_blast_radius_caps_a_fraction_of_the_fleet_rounding_down():
    p = replace(OPEN, max_fleet_fraction=0.1)
    assert not verdict(decide(policy=p, run=RunState(5)), "blast-radius").allowed  # 10% of 5 is 0
    assert verdict(decide(policy=p, run=RunState(20, ["a"])), "blast-radius").allowed
    assert not verdict(decide(policy=p, run=RunState(20, ["a", "b"])), "blast-radius").allowed


def test_blast_radius_counts_only_admitted_actions_biggest_savings_first():
    refs = [ResourceRef(Cloud.AWS, "111122223333", "us-east-1", f"i-{n}") for n in range(4)]
    cands = [cand(ref=refs[0], savings="10"), cand(ref=refs[1], savings="50", tags={"costagent:skip": "1"}),
             cand(ref=refs[2], savings="30"), cand(ref=refs[3], savings="20")]
    ds = evaluate_run(cands, replace(OPEN, max_actions_per_run=2), now=NOW, fleet_size=100, marks=Marks(),
                      history=lambda key: None, capabilities=CAN, freshness=lambda c: (True, "idle"))
    assert [d.candidate.ref.id for d in ds] == ["i-1", "i-2", "i-3", "i-0"]
    assert [d.allowed for d in ds] == [False, True, True, False]  # the opted-out one used no slot
    assert "run cap reached: 2 of 2" in verdict(ds[3], "blast-radius").reason


def test_freshness_refuses_a_resource_that_became_busy():
    d = decide(fresh=lambda c: (False, "became busy: GPU 87% in the last 15 minutes"))
    v = verdict(d, "freshness")
    assert not d.allowed and not v.allowed and v.reason.startswith("became busy")


def test_freshness_failure_or_absence_refuses():
    def boom(c):
        raise TimeoutError("DescribeInstances timed out")
    assert verdict(decide(fresh=boom), "freshness").reason == "re-read failed: DescribeInstances timed out"
    assert not verdict(decide(fresh=None), "freshness").allowed


def test_freshness_is_not_checked_when_a_cheaper_guard_refused():
    calls = []
    d = decide(cand(kind="resize"), fresh=lambda c: calls.append(c) or (True, ""))
    v = verdict(d, "freshness")
    assert calls == [] and not v.allowed
    assert v.reason == "not checked: approval refused (re-reading costs cloud calls)"


def test_resize_needs_approval_by_id():
    v = verdict(decide(cand(kind="resize", rid="rightsize-abc")), "approval")
    assert not v.allowed and v.reason == "resize needs approval: approve rightsize-abc"
    p = replace(OPEN, approved_ids=frozenset({"rightsize-abc"}))
    assert decide(cand(kind="resize", rid="rightsize-abc"), p).allowed
    assert verdict(decide(), "approval").allowed  # stop needs none by default


def test_candidate_from_a_recommendation_keeps_its_id():
    rec = Recommendation("gpu-idle", Kind.STOP, REF, "p4d.24xlarge", Decimal("900"), 0.9, Risk.LOW, "idle",
                         action=Action("stop", REF))
    c = Candidate.from_recommendation(rec, {"team": "ml"})
    assert (c.kind, c.recommendation_id, c.tags["team"], c.monthly_savings_usd) == ("stop", rec.id, "ml", 900)
