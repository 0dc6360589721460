"""The only module that imports boto3/botocore: sessions, clients, pagination, error translation.

Configuration is the standard AWS chain: environment variables (``AWS_PROFILE``,
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` and the per-service ``AWS_ENDPOINT_URL_<SERVICE>``),
``~/.aws/config`` and ``credentials``, SSO, instance/container roles. Nothing here adds a knob of
its own: pointing costagent at a local server is ``AWS_ENDPOINT_URL=http://127.0.0.1:5000``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore
import botocore.exceptions
import botocore.parsers
from botocore.config import Config

from providers.errors import AuthError, ConfigurationError, NotFound, ProviderError, Throttled

log = logging.getLogger(__name__)

SessionFactory = Callable[[], boto3.session.Session]

_AUTH_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "OptInRequired",
}
_THROTTLE_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "LimitExceededException"}

AUTH_HINT = "check the AWS credential chain (AWS_PROFILE, ~/.aws/credentials, SSO login) and the role's read permissions"


class AwsClients:
    """boto3 clients for one run, one per (service, region), with call counting.

    ``session_factory`` is the injection point for tests and the demo; by default it is
    ``boto3.Session`` with the standard chain. ``endpoint_url`` is for the embedded demo only:
    users point costagent elsewhere with ``AWS_ENDPOINT_URL``, which boto3 honours itself.
    """

    def __init__(
        self,
        session_factory: SessionFactory | None = None,
        *,
        profile: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 5,
    ) -> None:
        self._session_factory = session_factory or (lambda: boto3.session.Session(profile_name=profile))
        self._session: boto3.session.Session | None = None
        self._endpoint_url = endpoint_url
        self._max_attempts = max_attempts
        self._clients: dict[tuple[str, str, int], Any] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    @property
    def session(self) -> boto3.session.Session:
        if self._session is None:
            try:
                self._session = self._session_factory()
            except botocore.exceptions.ProfileNotFound as exc:
                raise ConfigurationError(f"aws: {exc}", hint="see `aws configure list-profiles`") from exc
        return self._session

    def default_region(self) -> str | None:
        return self.session.region_name

    def client(self, service: str, region: str, *, max_attempts: int | None = None) -> Any:
        attempts = max_attempts or self._max_attempts
        key = (service, region, attempts)
        with self._lock:
            if key not in self._clients:
                config = Config(
                    region_name=region,
                    retries={"mode": "standard", "max_attempts": attempts},
                    user_agent_extra="costagent/0.1",
                    connect_timeout=10,
                    read_timeout=300,  # a large fleet's metric listing can be slow; never retry early
                )
                kwargs: dict[str, Any] = {"config": config}
                if self._endpoint_url:
                    kwargs["endpoint_url"] = self._endpoint_url
                client = self.session.client(service, **kwargs)
                client.meta.events.register("before-call.*.*", self._count)
                self._clients[key] = client
            return self._clients[key]

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def account_id(self, region: str) -> str:
        with translated("sts", "GetCallerIdentity", region):
            return str(self.client("sts", region).get_caller_identity()["Account"])


@contextmanager
def translated(service: str, operation: str, region: str | None = None) -> Iterator[None]:
    """Turn botocore's exceptions into ``providers.errors`` with the place named."""
    where = f"aws {service}.{operation}" + (f" in {region}" if region else "")
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        message = str(err.get("Message", "")).strip().splitlines()[0:1]
        text = f"{where}: {code}" + (f": {message[0][:1000]}" if message else "")
        if code in _AUTH_CODES:
            raise AuthError(text, hint=AUTH_HINT, code=code) from exc
        if code in _THROTTLE_CODES:
            raise Throttled(text, hint="retries exhausted; lower the pull's concurrency or try later", code=code) from exc
        if code.endswith("NotFound") or code.startswith("InvalidInstanceID") or code == "404":
            raise NotFound(text, code=code) from exc
        raise ProviderError(text, code=code) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise AuthError(f"{where}: no AWS credentials found", hint=AUTH_HINT) from exc
    except botocore.exceptions.NoRegionError as exc:
        raise ConfigurationError(f"{where}: no region", hint="pass --region or set AWS_DEFAULT_REGION") from exc
    except botocore.exceptions.EndpointConnectionError as exc:
        raise ProviderError(f"{where}: cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}",
                            hint="check network access and AWS_ENDPOINT_URL") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise ProviderError(f"{where}: {exc}") from exc
    except botocore.parsers.ResponseParserError as exc:  # not a BotoCoreError: an endpoint that is not AWS
        raise ProviderError(f"{where}: unreadable answer from the endpoint ({str(exc).splitlines()[0]})",
                            hint="check AWS_ENDPOINT_URL and the region") from exc


def pages(client: Any, operation: str, region: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every page of a paginated call, errors translated."""
    paginator = client.get_paginator(botocore.xform_name(operation))
    with translated(client.meta.service_model.service_name, operation, region):
        yield from paginator.paginate(**params)

