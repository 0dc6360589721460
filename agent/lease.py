"""The apply lease: one agent acts at a time, through a row in the state database.

``acquire`` takes the named lease in one statement (INSERT, or UPDATE of an expired lease, or of a lease whose
holder was a process on this host that no longer exists: killed with ``kill -9``); a release deletes only the
caller's own lease; ``renew`` extends it while it is still ours.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from agent.state_schema import JournalError, _iso, _time, locks
from providers.model import utc


class LockHeld(JournalError):
    def __init__(self, name: str, owner: str, expires_at: datetime) -> None:
        super().__init__(f"lock {name!r} is held by {owner} until {expires_at.isoformat()}")
        self.name, self.owner, self.expires_at = name, owner, expires_at


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    owner: str
    expires_at: datetime


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no user name in this environment
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def lease_owner() -> str:
    """``user@host:pid:nonce``: who holds a lease, and enough to tell whether that process still lives."""
    return f"{default_actor()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(owner: str) -> bool:
    """True only when ``owner`` (a ``lease_owner()``) names a process on this host that no longer exists.

    A holder on another host, or an owner in another format, is never judged dead: its lease expires.
    """
    match = re.fullmatch(r"(?P<actor>.+@(?P<host>[^:]+)):(?P<pid>\d+):[0-9a-f]+", owner)
    if match is None or match["host"] != socket.gethostname():
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed child not yet reaped by its parent still has a pid: Linux shows it as state Z."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class LeaseStore:
    """The lease methods of ``agent.journal.Journal`` (which provides ``engine`` and ``clock``)."""

    engine: Any
    clock: Any

    def acquire(self, name: str = "apply", owner: str | None = None,
                ttl: timedelta = timedelta(minutes=30)) -> Lease:
        """Take the lease ``name`` or raise ``LockHeld``: one INSERT, or one UPDATE of an expired lease, or of
        a lease whose holder was a process on this host that no longer exists (killed with ``kill -9``)."""
        owner = owner or lease_owner()
        now = self.clock.now()
        values = dict(owner=owner, acquired_at=_iso(now), expires_at=_iso(now + ttl))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(locks), dict(name=name, **values))
            return Lease(name, owner, utc(now + ttl))
        except IntegrityError:
            pass
        with self.engine.begin() as conn:
            taken = conn.execute(update(locks).where(and_(locks.c.name == name, locks.c.expires_at < _iso(now)))
                                 .values(**values)).rowcount
            if taken == 1:
                return Lease(name, owner, utc(now + ttl))
            holder = conn.execute(select(locks).where(locks.c.name == name)).first()
            if holder is not None and holder_is_dead(holder.owner):
                taken = conn.execute(update(locks).where(and_(locks.c.name == name, locks.c.owner == holder.owner))
                                     .values(**values)).rowcount
                if taken == 1:
                    return Lease(name, owner, utc(now + ttl))
        if holder is None:  # released between our two statements: try once more
            return self.acquire(name, owner, ttl)
        raise LockHeld(name, holder.owner, _time(holder.expires_at))  # type: ignore[arg-type]

    def release(self, name: str, owner: str) -> bool:
        """Delete the lease only if ``owner`` holds it."""
        with self.engine.begin() as conn:
            return conn.execute(delete(locks).where(and_(locks.c.name == name, locks.c.owner == owner))).rowcount > 0

    def renew(self, lease: Lease, ttl: timedelta = timedelta(minutes=30)) -> Lease:
        """Extend a live lease we hold; raises ``LockHeld`` (or JournalError) when it was lost."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            kept = conn.execute(update(locks).where(and_(locks.c.name == lease.name, locks.c.owner == lease.owner,
                                                         locks.c.expires_at >= _iso(now)))
                                .values(expires_at=_iso(now + ttl))).rowcount
            holder = conn.execute(select(locks).where(locks.c.name == lease.name)).first()
        if kept:
            return Lease(lease.name, lease.owner, utc(now + ttl))
        if holder is not None and holder.owner != lease.owner:
            raise LockHeld(lease.name, holder.owner, _time(holder.expires_at))  # type: ignore[arg-type]
        raise JournalError(f"lock {lease.name!r} of {lease.owner} expired")

    @contextmanager
    def lock(self, name: str = "apply", owner: str | None = None,
             ttl: timedelta = timedelta(minutes=30)) -> Iterator[Lease]:
        """Hold the lease for the block; released on exit (only if still ours)."""
        lease = self.acquire(name, owner, ttl)
        try:
            yield lease
        finally:
            self.release(lease.name, lease.owner)
