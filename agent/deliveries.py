"""Digest deliveries, recorded in the state database so nothing is sent twice and nothing is lost.

``claim`` takes (channel, audience, digest key) in one INSERT before sending; a second claim of the same key
is refused (sent already, or being sent by a live process). ``sent`` records it with the findings sent (the
next digest to that audience marks each finding new / changed / unchanged against them); ``failed`` frees
the claim so the next run retries. A claim left ``sending`` by a process that died (``kill -9`` mid-send, on
this host) or claimed longer ago than ``SENDING_TTL`` (a process on another host: a rescheduled pod) is taken
over: a digest may then arrive twice rather than never.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from agent.clock import Clock
from agent.lease import holder_is_dead, lease_owner
from agent.state_schema import _iso, _time, deliveries

SENDING, SENT = "sending", "sent"
#: A send (three attempts, 30 s timeouts, back-off) ends well within this; a claim older than it was abandoned.
SENDING_TTL = timedelta(minutes=10)


class Deliveries:
    def __init__(self, engine: Any, clock: Clock, owner: str | None = None) -> None:
        self.engine, self.clock = engine, clock
        self.owner = owner or lease_owner()

    def claim(self, channel: str, audience: str, digest_key: str) -> bool:
        """True when this process may send it now; False when it was sent, or a live process is sending it."""
        row = dict(channel=channel, audience=audience, digest_key=digest_key, status=SENDING, owner=self.owner,
                   claimed_at=_iso(self.clock.now()))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(deliveries), row)
            return True
        except IntegrityError:
            pass
        key = self._key(channel, audience, digest_key)
        with self.engine.begin() as conn:
            held = conn.execute(select(deliveries).where(key)).first()
            if held is None or held.status != SENDING or held.owner == self.owner:
                return False
            stale = _time(held.claimed_at) < self.clock.now() - SENDING_TTL  # type: ignore[operator]
            if not (stale or holder_is_dead(held.owner)):
                return False
            return conn.execute(update(deliveries).where(and_(key, deliveries.c.owner == held.owner))
                                .values(owner=self.owner, claimed_at=row["claimed_at"])).rowcount == 1

    def sent(self, channel: str, audience: str, digest_key: str, findings: Mapping[str, Decimal]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(deliveries).where(self._key(channel, audience, digest_key)).values(
                status=SENT, sent_at=_iso(self.clock.now()),
                findings=json.dumps({k: str(v) for k, v in findings.items()}, sort_keys=True)))

    def failed(self, channel: str, audience: str, digest_key: str) -> None:
        """Free the claim (only our own): the next run tries again."""
        with self.engine.begin() as conn:
            conn.execute(delete(deliveries).where(and_(self._key(channel, audience, digest_key),
                                                       deliveries.c.owner == self.owner,
                                                       deliveries.c.status == SENDING)))

    def previous(self, channel: str, audience: str) -> dict[str, Decimal] | None:
        """The findings of the last digest sent to this audience on this channel; None before the first."""
        with self.engine.connect() as conn:
            row = conn.execute(select(deliveries.c.findings).where(and_(
                deliveries.c.channel == channel, deliveries.c.audience == audience, deliveries.c.status == SENT))
                .order_by(deliveries.c.sent_at.desc()).limit(1)).first()
        if row is None or row.findings is None:
            return None
        return {k: Decimal(v) for k, v in json.loads(row.findings).items()}

    def prune(self, before: datetime) -> int:
        """Delete sent deliveries older than ``before``, keeping the latest per channel and audience (the
        "new or changed" comparison needs it)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.channel, deliveries.c.audience, deliveries.c.digest_key,
                                       deliveries.c.sent_at).where(deliveries.c.status == SENT)).all()
        latest: dict[tuple[str, str], tuple[str, str]] = {}
        for r in rows:
            if (r.channel, r.audience) not in latest or r.sent_at > latest[(r.channel, r.audience)][1]:
                latest[(r.channel, r.audience)] = (r.digest_key, r.sent_at)
        old = [r for r in rows if r.sent_at < _iso(before) and latest[(r.channel, r.audience)][0] != r.digest_key]
        with self.engine.begin() as conn:
            for r in old:
                conn.execute(delete(deliveries).where(self._key(r.channel, r.audience, r.digest_key)))
        return len(old)

    @staticmethod
    def _key(channel: str, audience: str, digest_key: str) -> Any:
        return and_(deliveries.c.channel == channel, deliveries.c.audience == audience,
                    deliveries.c.digest_key == digest_key)
