"""The state database's tables (SQLAlchemy Core) and how times are stored in them: the journal's actions and
guard verdicts, grace-period marks, the apply lease, digest deliveries, the daemon's run ledger and the
results of its collect runs (the scheduler's own job store, ``apscheduler_jobs``, lives beside them). One ``metadata``; ``Journal`` creates them all."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text, UniqueConstraint

from providers.model import utc

metadata = MetaData()
_T = String(32)  # fixed-width UTC ISO time

actions = Table(
    "actions", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("plan_id", String(128), nullable=False), Column("run_id", String(128), nullable=False),
    Column("actor", String(256), nullable=False), Column("kind", String(64), nullable=False),
    Column("cloud", String(16), nullable=False), Column("account", String(256), nullable=False),
    Column("region", String(128), nullable=False), Column("resource_id", String(1024), nullable=False),
    Column("params", Text, nullable=False), Column("status", String(32), nullable=False, index=True),
    Column("before", Text), Column("after", Text), Column("error", Text),
    Column("undo_of", String(64)),
    Column("active_key", String(1536), unique=True),  # plan|resource|kind while ACTED, else NULL
    Column("created_at", _T, nullable=False, index=True), Column("finished_at", _T),
)
guard_verdicts = Table(
    "guard_verdicts", metadata,
    Column("action_id", String(64), primary_key=True), Column("position", Integer, primary_key=True),
    Column("guard", String(128), nullable=False), Column("allowed", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
)
marks_table = Table(
    "marks", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("resource_key", String(1536), nullable=False, index=True), Column("kind", String(64), nullable=False),
    Column("marked_at", _T, nullable=False), Column("act_after", _T, nullable=False),
    Column("notified", Boolean, nullable=False, default=False), Column("cleared_at", _T),
)
locks = Table(
    "locks", metadata,
    Column("name", String(128), primary_key=True), Column("owner", String(256), nullable=False),
    Column("acquired_at", _T, nullable=False), Column("expires_at", _T, nullable=False),
)
deliveries = Table(
    "deliveries", metadata,
    Column("channel", String(256), primary_key=True), Column("audience", String(512), primary_key=True),
    Column("digest_key", String(256), primary_key=True),  # e.g. the digest job's scheduled time
    Column("status", String(16), nullable=False),  # sending | sent
    Column("owner", String(256), nullable=False),  # who claimed it (lease_owner format)
    Column("claimed_at", _T, nullable=False), Column("sent_at", _T),
    Column("findings", Text),  # JSON {finding id: monthly savings} of what was sent: "new or changed" next time
)

runs = Table(
    "runs", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("job", String(32), nullable=False), Column("scheduled_for", _T, nullable=False),
    Column("status", String(16), nullable=False, index=True),  # running | ok | failed | skipped | interrupted ...
    Column("owner", String(256), nullable=False),  # lease_owner() of the process running it
    Column("started_at", _T, nullable=False), Column("heartbeat_at", _T, nullable=False), Column("finished_at", _T),
    Column("attempt", Integer, nullable=False, default=1),
    Column("detail", Text),  # JSON: what the run did (counts, plan id) or its error, one line
    UniqueConstraint("job", "scheduled_for", name="uq_runs_job_scheduled"),
)
collected = Table(
    "collected", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False), Column("finished_at", _T, nullable=False, index=True),
    Column("digest", Text, nullable=False),  # reports.digest_json: the fleet-wide digest of this audit
    Column("plan", Text, nullable=False),  # agent.plan: the plan of this audit, every guard evaluated
    Column("summary", Text, nullable=False),  # JSON: counts and savings, for logs and metrics
)


class JournalError(Exception):
    """The journal cannot be used (bad URL, unreachable database) or was asked something impossible."""


def _iso(value: datetime) -> str:
    return utc(value).isoformat(timespec="microseconds")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None
