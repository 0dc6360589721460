"""The guards of the guarded apply: may this one action run now?

Pure logic: no cloud calls, no database. What the guards need to know about the world (marks, the
last action per resource, what each cloud's actuator can do, a fresh re-read of the resource) comes
in through small protocols and callables, so a journal and the providers plug in later.

Every guard is evaluated for every candidate and each gives a ``Verdict`` (guard, allowed, reason) in
the fixed order of ``GUARDS``, so the journal always shows every reason at once, not just the first
refusal. The one exception is ``freshness``: it re-reads the cloud, so it runs only when every cheaper
guard allowed (and says so when it did not run). An action runs only when every verdict allows.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from providers.model import ResourceRef, utc
from recommenders.model import Recommendation

GUARDS = ("mode", "capability", "scope", "window", "grace", "cooldown", "blast-radius", "freshness", "approval")
#: Opt-out tag (AWS tags, Azure tags) and its GCP label form (GCP label keys cannot contain ':').
SKIP_TAGS = ("costagent:skip", "costagent-skip")
#: Values of the opt-out tag that do NOT opt out; any other value, the empty one included, does.
_FALSE_VALUES = frozenset({"false", "no", "0", "off"})


class Mode(enum.IntEnum):
    """How far the agent may go, ordered from safest to least safe."""

    OFF = 0  # nothing: not even reported
    REPORT = 1  # findings only
    DRY_RUN = 2  # every guard evaluated and journaled, nothing changed
    APPLY = 3  # act when every guard allows

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> Mode:
        return cls[text.strip().upper().replace("-", "_")]


def effective_mode(global_mode: Mode, per_recommender: Mapping[str, Mode], recommender: str,
                   cli: Mode | None = None) -> Mode:
    """The minimum of the global mode, the recommender's own mode and the command-line flag.

    A per-recommender setting or a flag can only make a run safer, never raise it above the file's
    global mode: typing ``--apply`` must not override an operator's ``report`` in the configuration.
    """
    modes = [global_mode, per_recommender.get(recommender, global_mode)]
    if cli is not None:
        modes.append(cli)
    return min(modes)


@dataclass(frozen=True)
class Candidate:
    """One proposed action, as the guards see it."""

    kind: str  # the actuator kind: stop | resize | scale | schedule | ...
    ref: ResourceRef
    tags: Mapping[str, str]
    recommender: str
    recommendation_id: str
    params: Mapping[str, Any] = field(default_factory=dict)
    monthly_savings_usd: Decimal = Decimal(0)  # orders a run: the biggest savings first

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @classmethod
    def from_recommendation(cls, rec: Recommendation, tags: Mapping[str, str]) -> Candidate:
        if rec.action is None:
            raise ValueError(f"{rec.id} is advice only: it has no action to guard")
        return cls(rec.action.kind, rec.action.ref, tags, rec.recommender, rec.id, rec.action.params,
                   rec.monthly_savings_usd)


@dataclass(frozen=True, slots=True)
class Verdict:
    guard: str
    allowed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly maintenance window in local wall-clock time.

    ``days`` are ``datetime.weekday()`` numbers (0 Monday .. 6 Sunday) of the day the window *starts*;
    ``end <= start`` crosses midnight into the next day (``start == end``: the whole day). ``now`` is
    converted to ``tz`` with ``zoneinfo``, so "Saturday 22:00-02:00 Europe/Berlin" follows the wall
    clock through daylight-saving changes (a local time skipped by a spring-forward never occurs).
    """

    days: frozenset[int]
    start: time
    end: time
    tz: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))
        if not self.days or not self.days <= set(range(7)):
            raise ValueError(f"window days {sorted(self.days)} must be weekday numbers 0..6")
        ZoneInfo(self.tz)  # fails early on an unknown zone

    def contains(self, now: datetime) -> bool:
        local = utc(now).astimezone(ZoneInfo(self.tz))
        t, day = local.time().replace(tzinfo=None), local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        return (day in self.days and t >= self.start) or ((day - 1) % 7 in self.days and t < self.end)

    def __str__(self) -> str:
        names = ",".join(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[d] for d in sorted(self.days))
        return f"{names} {self.start:%H:%M}-{self.end:%H:%M} {self.tz}"


@dataclass(frozen=True)
class Policy:
    """The operator's rules; the defaults are the safe ones (report only, approval for resizes)."""

    mode: Mode = Mode.DRY_RUN
    per_recommender: Mapping[str, Mode] = field(default_factory=dict)
    accounts: frozenset[str] = frozenset()  # accounts / projects / subscriptions; empty: all
    regions: frozenset[str] = frozenset()  # empty: all
    required_tags: Mapping[str, str] = field(default_factory=dict)  # every key=value must match
    windows: tuple[Window, ...] = ()  # empty: any time
    grace_hours: float = 0.0  # 0: off
    cooldown: timedelta = timedelta(0)
    max_actions_per_run: int | None = None  # None: no cap
    max_fleet_fraction: float | None = None  # e.g. 0.1; None: no cap
    approval_required_kinds: frozenset[str] = frozenset({"resize"})
    approved_ids: frozenset[str] = frozenset()


class Marks(Protocol):
    """Grace-period marks, keyed by (resource key, action kind); the journal implements it later."""

    def marked_at(self, key: str, kind: str) -> datetime | None: ...

    def notified(self, key: str, kind: str) -> bool: ...


#: The last time the agent acted on a resource (by ``ResourceRef.key``), None if never.
History = Callable[[str], datetime | None]
#: Re-reads the resource and its latest metrics: (still fine to act, why).
Freshness = Callable[[Candidate], tuple[bool, str]]
#: cloud -> {kind: None (the actuator can) or the reason it cannot}; or a callable giving that reason.
Capabilities = Mapping[str, Mapping[str, str | None]] | Callable[[Candidate], str | None]


@dataclass
class RunState:
    """What one run has let through so far (blast radius): keys of the admitted actions, fleet size."""

    fleet_size: int
    admitted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    mode: Mode
    verdicts: tuple[Verdict, ...]
    to_mark: bool = False  # first sight under a grace period: the caller records the mark (and notifies)

    @property
    def allowed(self) -> bool:
        return allowed(self.verdicts)

    @property
    def would_act(self) -> bool:
        """Every guard but the mode allowed, and the mode is at least dry-run: what a dry run reports."""
        return self.mode >= Mode.DRY_RUN and all(v.allowed for v in self.verdicts if v.guard != "mode")


def allowed(verdicts: Iterable[Verdict]) -> bool:
    verdicts = list(verdicts)
    return bool(verdicts) and all(v.allowed for v in verdicts)


def _mode(mode: Mode) -> Verdict:
    """Only ``apply`` acts; dry-run runs every guard and changes nothing."""
    reasons = {Mode.OFF: "mode off: nothing is done for this recommender",
               Mode.REPORT: "mode report: findings only",
               Mode.DRY_RUN: "mode dry-run: would act if every other guard allows; nothing is changed",
               Mode.APPLY: "mode apply"}
    return Verdict("mode", mode is Mode.APPLY, reasons[mode])


def _capability(c: Candidate, capabilities: Capabilities) -> Verdict:
    """The cloud's actuator must support the kind. Unknown clouds and kinds refuse: safe by default."""
    if callable(capabilities):
        why = capabilities(c)
    else:
        kinds = capabilities.get(str(c.ref.cloud))
        if kinds is None or c.kind not in kinds:
            return Verdict("capability", False, f"no actuator for {c.kind} on {c.ref.cloud}")
        why = kinds[c.kind]
    if why:
        return Verdict("capability", False, f"cannot {c.kind} on {c.ref.cloud}: {why}")
    return Verdict("capability", True, f"{c.ref.cloud} can {c.kind}")


def opted_out(tags: Mapping[str, str]) -> str | None:
    """The opt-out tag found, if any: ``costagent:skip`` (or GCP's ``costagent-skip``) with any value
    but false/no/0/off, an empty value included (the tag just present opts out)."""
    for key, value in tags.items():
        if key.lower() in SKIP_TAGS and value.strip().lower() not in _FALSE_VALUES:
            return f"{key}={value}" if value else key
    return None


def _scope(c: Candidate, p: Policy) -> Verdict:
    """Only allowlisted accounts and regions, only resources carrying every required tag, never an
    opted-out one: the operator decides what the agent may touch, the owner may always say no."""
    problems = []
    if p.accounts and c.ref.account not in p.accounts:
        problems.append(f"account {c.ref.account} not allowlisted")
    if p.regions and c.ref.region not in p.regions:
        problems.append(f"region {c.ref.region} not allowlisted")
    problems += [f"tag {k}={v} required (has {c.tags.get(k, 'none')})"
                 for k, v in p.required_tags.items() if c.tags.get(k) != v]
    skip = opted_out(c.tags)
    if skip:
        problems.append(f"opted out by {skip}")
    return Verdict("scope", not problems, "; ".join(problems) or "in scope")


def _window(p: Policy, now: datetime) -> Verdict:
    """Act only inside a maintenance window (any time when none is configured)."""
    if not p.windows:
        return Verdict("window", True, "no maintenance window configured: any time")
    open_ = next((w for w in p.windows if w.contains(now)), None)
    if open_ is not None:
        return Verdict("window", True, f"inside window {open_}")
    return Verdict("window", False, "outside every maintenance window: " + "; ".join(map(str, p.windows)))


def _grace(c: Candidate, p: Policy, now: datetime, marks: Marks) -> tuple[Verdict, bool]:
    """Mark now, act after ``grace_hours``, owners notified in between (Cloud Custodian's mark-for-op):
    nobody loses a machine without warning. Returns the verdict and whether to create the mark."""
    if p.grace_hours <= 0:
        return Verdict("grace", True, "no grace period"), False
    grace = timedelta(hours=p.grace_hours)
    marked = marks.marked_at(c.ref.key, c.kind)
    if marked is None:
        return Verdict("grace", False, f"marked now, act after {(now + grace).isoformat()}"), True
    act_after = utc(marked) + grace
    if now < act_after:
        return Verdict("grace", False, f"marked at {utc(marked).isoformat()}, act after {act_after.isoformat()}"), False
    if not marks.notified(c.ref.key, c.kind):
        return Verdict("grace", False, "grace period over but the owners were not notified yet"), False
    return Verdict("grace", True, f"marked at {utc(marked).isoformat()}, owners notified, grace over"), False


def _cooldown(c: Candidate, p: Policy, now: datetime, history: History) -> Verdict:
    """Leave a resource alone for ``cooldown`` after the last action on it: no flapping."""
    last = history(c.ref.key)
    if last is None:
        return Verdict("cooldown", True, "never acted on")
    until = utc(last) + p.cooldown
    if now < until:
        return Verdict("cooldown", False, f"acted on at {utc(last).isoformat()}, cooling down until {until.isoformat()}")
    return Verdict("cooldown", True, f"last acted on at {utc(last).isoformat()}")


def blast_limit(p: Policy, fleet_size: int) -> int | None:
    """The most actions one run may take: the smaller of the per-run cap and the fleet fraction
    (rounded down, so 10% of a 5-machine fleet is 0), None when uncapped."""
    caps = [p.max_actions_per_run] if p.max_actions_per_run is not None else []
    if p.max_fleet_fraction is not None:
        caps.append(int(p.max_fleet_fraction * fleet_size))
    return min(caps) if caps else None


def _blast(p: Policy, run: RunState) -> Verdict:
    """Cap what one run can do, so a bad model or a bad metric cannot stop a whole fleet. Counts only
    actions already admitted (every other guard passed) earlier in this run."""
    limit = blast_limit(p, run.fleet_size)
    done = len(run.admitted)
    if limit is None:
        return Verdict("blast-radius", True, f"no cap ({done} admitted this run)")
    if done >= limit:
        return Verdict("blast-radius", False, f"run cap reached: {done} of {limit} actions "
                                              f"(fleet of {run.fleet_size})")
    return Verdict("blast-radius", True, f"{done + 1} of {limit} actions this run")


def _approval(c: Candidate, p: Policy) -> Verdict:
    """Kinds that change what a workload runs on (resize by default) need a human's approval by id."""
    if c.kind not in p.approval_required_kinds:
        return Verdict("approval", True, f"{c.kind} needs no approval")
    if c.recommendation_id in p.approved_ids:
        return Verdict("approval", True, f"{c.recommendation_id} approved")
    return Verdict("approval", False, f"{c.kind} needs approval: approve {c.recommendation_id}")


def _freshness(c: Candidate, freshness: Freshness | None) -> Verdict:
    """Re-read the resource and its latest metrics right before acting: still running, still idle.
    A failed or missing re-read refuses."""
    if freshness is None:
        return Verdict("freshness", False, "no freshness check configured")
    try:
        ok, why = freshness(c)
    except Exception as exc:  # noqa: BLE001 - any failure to re-read means "not known fresh"
        return Verdict("freshness", False, f"re-read failed: {exc}")
    return Verdict("freshness", bool(ok), why)


def evaluate(candidate: Candidate, policy: Policy, *, now: datetime, run_state: RunState, marks: Marks,
             history: History, capabilities: Capabilities, freshness: Freshness | None,
             cli_mode: Mode | None = None) -> Decision:
    """Every guard's verdict for one candidate, in the order of ``GUARDS``.

    The cheap guards always run. ``freshness`` runs only when all of them but the mode allowed and the
    mode is at least dry-run (approval, cheap, is decided first even though it is reported last). The
    caller admits ``decision.would_act`` decisions into ``run_state`` (``evaluate_run`` does).
    """
    now = utc(now)
    mode = effective_mode(policy.mode, policy.per_recommender, candidate.recommender, cli_mode)
    grace, first_sight = _grace(candidate, policy, now, marks)
    cheap = {
        "mode": _mode(mode),
        "capability": _capability(candidate, capabilities),
        "scope": _scope(candidate, policy),
        "window": _window(policy, now),
        "grace": grace,
        "cooldown": _cooldown(candidate, policy, now, history),
        "blast-radius": _blast(policy, run_state),
        "approval": _approval(candidate, policy),
    }
    refused = [g for g, v in cheap.items() if g != "mode" and not v.allowed]
    if mode < Mode.DRY_RUN:
        fresh = Verdict("freshness", False, f"not checked: mode {mode.label} (re-reading costs cloud calls)")
    elif refused:
        fresh = Verdict("freshness", False, f"not checked: {', '.join(refused)} refused "
                                            "(re-reading costs cloud calls)")
    else:
        fresh = _freshness(candidate, freshness)
    verdicts = tuple(fresh if g == "freshness" else cheap[g] for g in GUARDS)
    # A mark promises the owners an action: only for candidates the agent may really act on.
    to_mark = first_sight and all(cheap[g].allowed for g in ("mode", "capability", "scope"))
    return Decision(candidate, mode, verdicts, to_mark)


def run_order(candidate: Candidate) -> tuple[Any, ...]:
    """The stable order of a run: the biggest savings first, then by resource and kind."""
    return (-candidate.monthly_savings_usd, candidate.ref.key, candidate.kind, candidate.recommendation_id)


def evaluate_run(candidates: Iterable[Candidate], policy: Policy, *, now: datetime, fleet_size: int,
                 marks: Marks, history: History, capabilities: Capabilities, freshness: Freshness | None,
                 cli_mode: Mode | None = None) -> list[Decision]:
    """Evaluate a run's candidates in ``run_order``, admitting each one that would act (blast radius)."""
    run = RunState(fleet_size)
    decisions = []
    for c in sorted(candidates, key=run_order):
        d = evaluate(c, policy, now=now, run_state=run, marks=marks, history=history,
                     capabilities=capabilities, freshness=freshness, cli_mode=cli_mode)
        if d.would_act:
            run.admitted.append(c.ref.key)
        decisions.append(d)
    return decisions
