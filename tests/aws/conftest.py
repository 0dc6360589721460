"""One moto server per test module, reset before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.sandbox import MotoServer, moto_server
from tests.aws.support import reset


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with moto_server(("us-east-1", "us-west-2")) as srv:
        yield srv


@pytest.fixture
def moto(server: MotoServer) -> MotoServer:
    reset(server.url)
    return server
