"""The protocols every cloud implements: ``Provider`` (the read side, ``providers/<cloud>/__init__.py``) and
``Actuator`` (the guarded changes, ``providers/<cloud>/actuator.py``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from typing import Any, Protocol

from providers.errors import ProviderError
from providers.model import (Action, Cloud, CommitmentRate, CostRecord, Gap, Group, PriceQuote, Resource, Usage,
                             Window)


@dataclass(frozen=True)
class UsageResult:
    usage: Usage
    gaps: tuple[Gap, ...] = ()


class Provider(Protocol):
    """Read side of one cloud. Methods raise ``providers.errors.ProviderError`` on failure."""

    cloud: Cloud
    costs_hint: str  # what to enable when the billing API has no data

    def resources(self, region: str) -> list[Resource]: ...

    def groups(self, region: str) -> list[Group]:
        """Scaling groups (ASGs, MIGs, scale sets) with their sizes and current members."""
        ...

    def offered_types(self, region: str, instance_types: Sequence[str]) -> set[str]:
        """Which of ``instance_types`` the region offers to this account (right-sizing targets)."""
        ...

    def usage(
        self,
        region: str,
        resources: Sequence[Resource],
        window: Window,
        period: timedelta,
        on_progress: Callable[[int, int], None] | None = None,
        host_metrics_for: Callable[[pd.DataFrame], Collection[str]] | None = None,
    ) -> UsageResult:
        """GPU, CPU and network usage of ``resources``; ``on_progress(done, total)`` as queries complete.

        ``host_metrics_for`` sees the GPU rows first and names the resources (keys) whose CPU and
        network are worth reading; by default, all with GPU telemetry.
        """
        ...

    def costs(self, window: Window) -> list[CostRecord]: ...

    def prices(self, region: str, instance_types: Sequence[str], at: datetime) -> list[PriceQuote]: ...

    def commitment_rates(self, region: str, instance_types: Sequence[str], at: datetime) -> list[CommitmentRate]:
        """Commitment prices (savings plans, reservations, CUDs) of ``instance_types``: catalog, refined live."""
        ...

    def api_calls(self) -> dict[str, int]:
        """Calls made so far, keyed ``service.Operation``."""
        ...


#: Every action kind costagent knows. An actuator maps each to None (supported) or the reason it is not.
ACTION_KINDS = ("stop", "start", "deallocate", "power_off", "resize", "scale", "schedule", "tag", "spot",
                "commitment", "consolidate")


@dataclass(frozen=True)
class Preview:
    """What an action would do, found without changing anything.

    ``native`` is True when the cloud itself checked the request (EC2 ``DryRun``: the caller's
    permission included); otherwise the resource's state was read and judged. ``state`` is what was
    read (e.g. ``{"state": "running", "type": "g5.xlarge"}``); ``detail`` says why not, or what
    would happen.
    """

    action: Action
    would_succeed: bool
    native: bool
    state: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    """A change made: the resource's state ``before`` (what ``Actuator.undo`` restores) and ``after``.

    ``note`` says what an undo could not restore (e.g. new tags, which would need a delete).
    """

    action: Action
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    note: str = ""


class Actuator(Protocol):
    """Write side of one cloud: changes that stop, start, resize or rescale, and undo them.

    Never terminates or deletes. Methods raise ``providers.errors.ProviderError`` on failure; an
    unsupported kind raises ``ProviderError`` with ``kinds()``'s reason.
    """

    cloud: Cloud

    def kinds(self) -> Mapping[str, str | None]:
        """Every kind in ``ACTION_KINDS``: None when supported, else the reason it is not."""
        ...

    def permissions(self, kind: str) -> tuple[str, ...]:
        """The IAM permissions (GCP), IAM actions (AWS) or RBAC actions (Azure) ``kind`` needs."""
        ...

    def read(self, action: Action) -> Mapping[str, Any]:
        """The resource's current state as far as ``action`` is concerned (the shape ``Outcome.before`` has):
        e.g. ``{"state": "running", "type": "g5.xlarge"}`` for an instance, the sizes for a group."""
        ...

    def effect_seen(self, action: Action, state: Mapping[str, Any]) -> bool:
        """Whether ``state`` (from ``read``) shows ``action`` done or under way (a stop: stopping or stopped).
        Settles an intent whose result was never recorded (a crash between the call and the journal)."""
        ...

    def preview(self, action: Action) -> Preview:
        """A cloud-native dry run where the API has one, else a read-only check of the resource state."""
        ...

    def execute(self, action: Action) -> Outcome: ...

    def undo(self, action: Action, before: Mapping[str, Any]) -> Outcome:
        """Bring the resource back to ``before`` (an ``Outcome.before`` of ``execute(action)``)."""
        ...


class DeclaredActuator:
    """What every cloud's actuator shares: its kinds and permissions from its ``CALLS`` map (kind -> the calls it
    makes, ``providers/<cloud>/permissions.ACTUATOR_CALLS``) and ``REASONS`` for the rest, the refusal of an
    unsupported kind before any request, and ``execute``'s frame (read before, refuse or skip, change, read
    after). Subclasses give ``read``, ``_apply`` and ``_refusal``."""

    cloud: Cloud
    NAME: str = ""  # "AWS", "GCP", "Azure": for messages
    CALLS: Mapping[str, tuple[str, ...]] = {}
    REASONS: Mapping[str, str] = {}
    #: Kinds ``execute`` first checks with ``_refusal`` (a stale or impossible change is refused, none made).
    CHECKED: tuple[str, ...] = ("resize", "scale")

    def kind_permissions(self, kind: str) -> tuple[str, ...]:
        raise NotImplementedError

    def kinds(self) -> Mapping[str, str | None]:
        return {k: (None if k in self.CALLS else self.REASONS.get(k, f"not supported on {self.NAME}"))
                for k in ACTION_KINDS}

    def permissions(self, kind: str) -> tuple[str, ...]:
        return self.kind_permissions(kind) if kind in self.CALLS else ()

    def _check(self, action: Action) -> None:
        reason = self.kinds().get(action.kind, f"unknown action kind {action.kind!r}")
        if reason is not None:
            raise ProviderError(f"{self.cloud}: cannot {action.kind} {action.ref.id}: {reason}",
                                code="UnsupportedAction")

    def read(self, action: Action) -> dict[str, Any]:
        raise NotImplementedError

    def _apply(self, action: Action, kind: str, params: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _refusal(self, action: Action, state: Mapping[str, Any]) -> tuple[str, str]:
        """(code, why) when ``action`` cannot be made from ``state``; code ``NoChange`` when there is nothing to do."""
        return "", ""

    def _hint(self, code: str) -> str | None:
        return None

    def execute(self, action: Action) -> Outcome:
        before = self.read(action)
        if action.kind in self.CHECKED:
            code, why = self._refusal(action, before)
            if code == "NoChange":
                return Outcome(action, before, before, why)
            if why:
                raise ProviderError(f"{self.cloud}: cannot {action.kind} {action.ref.id}: {why}", code=code,
                                    hint=self._hint(code))
        self._apply(action, action.kind, action.params)
        return Outcome(action, before, self.read(action))


def int_param(action: Action, key: str) -> int | None:
    """``action.params[key]`` as an int; None when it is missing or not a whole number."""
    try:
        return int(action.params[key])
    except (KeyError, TypeError, ValueError):
        return None
