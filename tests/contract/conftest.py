"""The contract suite's fixtures: each cloud's emulators start once per session, each test gets a fresh harness.

``cloud_backend`` is parametrized over the three clouds at session scope, so pytest groups the tests by cloud
and each cloud's emulators start once; ``harness`` hands every test an isolated account on them (AWS: moto
reset; GCP: a new project; Azure: a new subscription) and clears any failure a test left queued.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.contract.harness import Harness, backend

CLOUDS = ("aws", "gcp", "azure")


@pytest.fixture(scope="session", params=CLOUDS)
def cloud_backend(request: pytest.FixtureRequest) -> Iterator[Callable[[], Harness]]:
    with backend(request.param) as make:
        yield make


@pytest.fixture
def harness(cloud_backend: Callable[[], Harness]) -> Iterator[Harness]:
    made = cloud_backend()
    try:
        yield made
    finally:
        made.close()
