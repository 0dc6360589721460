"""The digest: one versioned model every channel renders (Slack, email, HTML, Markdown, CSV).

A digest is for one audience (everyone, a team, an owner): its findings ranked by monthly savings, what the
agent applied since the last digest, what is due (marked, acting after its grace period), what could not be
read, and the series the charts draw (idle GPU-hours and dollars per day, savings by kind and by team, the
hour-of-week idle heat map). ``route`` splits one fleet-wide digest per owner or team by tag; ``quiet``
applies the noise controls (minimum savings, mutes with expiry, only new or changed findings).

Pure: no I/O, no clock (``generated_at`` comes in), no cloud SDK. Text from the clouds (tags, names) stays
raw here; every renderer escapes it for its format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from providers.model import utc

DIGEST_VERSION = "1.0"
NEW, CHANGED, UNCHANGED = "new", "changed", "unchanged"
#: A finding whose savings moved by more than this share since the last digest counts as changed.
CHANGE_SHARE = Decimal("0.10")


@dataclass(frozen=True)
class Finding:
    id: str  # the recommendation's stable id
    kind: str
    recommender: str
    cloud: str
    account: str
    region: str
    resource_id: str
    name: str | None
    instance_type: str | None
    monthly_savings_usd: Decimal
    confidence: float
    risk: str
    summary: str
    owner: str | None = None  # from the routing tag (e.g. ``owner``)
    team: str | None = None  # from the team tag (e.g. ``team``)
    actionable: bool = False  # has an action (stop, resize, scale), else advice only
    status: str = NEW  # new | changed | unchanged, against the last digest to this audience


@dataclass(frozen=True)
class Applied:
    """An action the agent took (or settled) since the last digest, from the journal."""

    action_id: str
    kind: str
    cloud: str
    resource_id: str
    status: str  # done | failed | reconciled-done | undone ...
    at: datetime
    actor: str
    before: str = ""  # short text, e.g. "running g5.xlarge"
    after: str = ""


@dataclass(frozen=True)
class Due:
    """A resource marked for an action that follows after its grace period."""

    kind: str
    cloud: str
    resource_id: str
    act_after: datetime


@dataclass(frozen=True)
class Unread:
    """Something that could not be read (a gap), and how to fix it."""

    cloud: str
    what: str
    reason: str
    region: str | None = None
    resource_id: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class IdleDay:
    day: date
    idle_gpu_hours: float
    idle_usd: Decimal


@dataclass(frozen=True)
class Digest:
    generated_at: datetime
    window_start: datetime
    window_end: datetime
    clouds: tuple[str, ...]
    audience: str = "everyone"  # "everyone", "team:<name>", "owner:<name>"
    findings: tuple[Finding, ...] = ()
    applied: tuple[Applied, ...] = ()
    due: tuple[Due, ...] = ()
    unread: tuple[Unread, ...] = ()
    idle_by_day: tuple[IdleDay, ...] = ()
    #: idle GPU-hours per UTC hour of the week, Monday 00:00 first (168 values), summed over the window
    idle_heatmap: tuple[float, ...] = ()
    demo: bool = False
    version: str = DIGEST_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("generated_at", "window_start", "window_end"):
            object.__setattr__(self, name, utc(getattr(self, name)))
        ranked = sorted(self.findings, key=lambda f: (-f.monthly_savings_usd, f.id))
        object.__setattr__(self, "findings", tuple(ranked))
        if self.idle_heatmap and len(self.idle_heatmap) != 168:
            raise ValueError(f"idle_heatmap has {len(self.idle_heatmap)} values, not 168 (hours of a week)")

    @property
    def monthly_savings_usd(self) -> Decimal:
        """Each resource counted once, at its largest finding (findings on one resource overlap)."""
        largest: dict[tuple[str, str], Decimal] = {}
        for f in self.findings:
            key = (f.cloud, f.resource_id)
            largest[key] = max(largest.get(key, Decimal(0)), f.monthly_savings_usd)
        return sum(largest.values(), Decimal(0))

    def savings_by(self, attribute: str) -> dict[str, Decimal]:
        """Monthly savings per ``kind`` or ``team`` (findings without one under "(none)"), largest first."""
        out: dict[str, Decimal] = {}
        for f in self.findings:
            label = getattr(f, attribute) or "(none)"
            out[label] = out.get(label, Decimal(0)) + f.monthly_savings_usd
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def is_empty(self) -> bool:
        return not (self.findings or self.applied or self.due or self.unread)


def route(digest: Digest, by: str = "team") -> dict[str, Digest]:
    """One digest per ``team`` or ``owner`` (findings without one go to ``"<by>:(none)"``); applied, due and
    unread items go to every audience whose resources they name, the rest only to the fleet-wide digest."""
    groups: dict[str, list[Finding]] = {}
    for f in digest.findings:
        groups.setdefault(f"{by}:{getattr(f, by) or '(none)'}", []).append(f)
    out = {}
    for audience, findings in sorted(groups.items()):
        names = {(f.cloud, f.resource_id) for f in findings}
        out[audience] = replace(
            digest, audience=audience, findings=tuple(findings),
            applied=tuple(a for a in digest.applied if (a.cloud, a.resource_id) in names),
            due=tuple(d for d in digest.due if (d.cloud, d.resource_id) in names),
            unread=tuple(u for u in digest.unread if u.resource_id and (u.cloud, u.resource_id) in names))
    return out


@dataclass(frozen=True)
class Mute:
    """Silence findings until ``until``: by recommendation id, by resource id, or by kind."""

    until: datetime
    finding_id: str | None = None
    resource_id: str | None = None
    kind: str | None = None
    reason: str = ""

    def matches(self, f: Finding, now: datetime) -> bool:
        if utc(now) >= utc(self.until):
            return False
        return any((self.finding_id == f.id, self.resource_id == f.resource_id, self.kind == f.kind)) and not (
            self.finding_id is None and self.resource_id is None and self.kind is None)


def quiet(digest: Digest, *, min_savings_usd: Decimal = Decimal(0), mutes: Iterable[Mute] = (),
          previous: Mapping[str, Decimal] | None = None, only_new_or_changed: bool = False) -> Digest:
    """The digest after the noise controls. ``previous``: finding id -> its savings in the last digest sent to
    this audience; each finding is marked new / changed (savings moved over 10 %) / unchanged, and with
    ``only_new_or_changed`` the unchanged ones are dropped."""
    kept = []
    mutes = list(mutes)
    for f in digest.findings:
        if f.monthly_savings_usd < min_savings_usd or any(m.matches(f, digest.generated_at) for m in mutes):
            continue
        status = _status(f, previous)
        if only_new_or_changed and status == UNCHANGED:
            continue
        kept.append(replace(f, status=status))
    return replace(digest, findings=tuple(kept))


def _status(f: Finding, previous: Mapping[str, Decimal] | None) -> str:
    if previous is None or f.id not in previous:
        return NEW
    before = previous[f.id]
    if before == 0:
        return CHANGED if f.monthly_savings_usd else UNCHANGED
    return CHANGED if abs(f.monthly_savings_usd - before) / before > CHANGE_SHARE else UNCHANGED


def top(findings: Sequence[Finding], n: int) -> tuple[Finding, ...]:
    return tuple(findings[:n])
