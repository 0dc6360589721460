"""The embedded demo cloud: a simulated fleet seeded into a local moto server.

``costagent audit --demo`` and the tests use it the same way: start the server, seed the fleet
through boto3, then run the normal AWS provider against the server's URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import boto3
import pandas as pd
from moto.server import ThreadedMotoServer

from providers.sandbox.aws_groups import seed_groups
from providers.sandbox.billing import Reservation, focus_rows, upload
from providers.sandbox.aws_seed import Seeded, seed_costs, seed_fleet
from providers.sandbox.fleet import SimInstance, demo_fleet
from providers.sandbox.groups import SimGroup, demo_groups

#: A simulated instance with this tag is covered by the demo's reserved instance in its billing export.
DEMO_RESERVED_TAG = "demo:reserved"
DEMO_RESERVATION = "arn:aws:ec2:us-east-1:123456789012:reserved-instances/2f1c6a7e-demo-p4d"
DEMO_CREDENTIALS = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}


@dataclass(frozen=True)
class MotoServer:
    url: str
    regions: tuple[str, ...]

    def session(self, region: str | None = None) -> boto3.session.Session:
        return boto3.session.Session(region_name=region or self.regions[0], **DEMO_CREDENTIALS)

    def session_factory(self) -> Callable[[], boto3.session.Session]:
        return self.session


@contextmanager
def moto_server(regions: Sequence[str] = ("us-east-1",)) -> Iterator[MotoServer]:
    """A moto server on a free loopback port for the duration of the block."""
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # moto's request log and its 500s for unknown APIs
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(f"http://{host}:{port}", tuple(regions))
    finally:
        server.stop()


@dataclass(frozen=True)
class DemoCloud:
    server: MotoServer
    fleet: tuple[SimInstance, ...]
    seeded: Seeded
    groups: tuple[SimGroup, ...] = ()
    group_members: dict[str, list[str]] | None = None  # group name -> member instance ids
    billing_paths: tuple[str, ...] = ()  # the demo's FOCUS export in the local S3

    @property
    def regions(self) -> tuple[str, ...]:
        return self.server.regions


@contextmanager
def demo_cloud(
    now: datetime,
    lookback: timedelta = timedelta(days=14),
    fleet: Sequence[SimInstance] | None = None,
    cadence: timedelta = timedelta(hours=1),
    groups: Sequence[SimGroup] | None = None,
) -> Iterator[DemoCloud]:
    """The demo fleet (or ``fleet``) and its scaling groups (``demo_groups()`` with the demo fleet, none
    with a fleet of the caller's unless ``groups`` is given) on a fresh moto server."""
    fleet = tuple(fleet if fleet is not None else demo_fleet())
    groups = tuple(groups if groups is not None else (demo_groups() if fleet == tuple(demo_fleet()) else ()))
    regions = tuple(sorted({i.region for i in fleet} | {g.region for g in groups}))
    end = pd.Timestamp(now)
    with moto_server(regions) as server:
        seeded = seed_fleet(server.session(), fleet, end, lookback, cadence, endpoint_url=server.url)
        members = seed_groups(server.session(), groups, end, lookback, cadence, endpoint_url=server.url) if groups else {}
        seed_costs(server.url, fleet, end, lookback,
                   [(g.instance_type, g.region) for g in groups for _ in members.get(g.name, [])])
        covered = [Reservation(i.name, DEMO_RESERVATION) for i in fleet if i.tags.get(DEMO_RESERVED_TAG)]
        rows = focus_rows(fleet, seeded.ids, end, lookback,
                          [(m, g.instance_type, g.region) for g in groups for m in members.get(g.name, [])], covered)
        billing = (upload(server.session(), server.url, rows),)
        yield DemoCloud(server, fleet, seeded, groups, members, billing)
