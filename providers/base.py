"""The protocol every cloud provider implements (``providers/<cloud>/__init__.py``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from typing import Protocol

from providers.model import Cloud, CommitmentRate, CostRecord, Gap, Group, PriceQuote, Resource, Usage, Window


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
