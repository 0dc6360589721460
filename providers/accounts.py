"""Clouds whose inventory is one listing per account (GCP projects, Azure subscriptions) over every region.

Compute Engine's ``aggregatedList`` and Azure's ``virtualMachines.listAll`` answer for all zones or
locations at once, so a provider reads each account once per run (``AccountInventory``) and serves every
region from that; usage is read per account (Cloud Monitoring and Azure Monitor are scoped by project
and subscription) and joined (``usage_per_account``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import timedelta

from providers.base import UsageResult
from providers.errors import ProviderError
from providers.model import Cloud, Gap, Group, Resource, Usage


class AccountInventory:
    """The accounts' resources, listed once (thread-safe) and kept for the run.

    One account that cannot be listed becomes a gap (``pending_gaps``) and the others are served; when
    every account fails, or the accounts themselves cannot be found, the first error is raised, now and
    on every later call (said once per region by the agent, never retried per region).
    """

    def __init__(self, cloud: Cloud, accounts: Callable[[], Sequence[str]],
                 list_account: Callable[[str], list[Resource]]) -> None:
        self._cloud = cloud
        self._accounts = accounts
        self._list = list_account
        self._lock = threading.Lock()
        self._found: dict[str, list[Resource]] | None = None
        self._failed: ProviderError | None = None
        self._gaps: list[Gap] = []
        self._groups: dict[str, list[Group]] = {}

    def all(self) -> dict[str, list[Resource]]:
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._found is None:
                try:
                    accounts = list(self._accounts())
                except ProviderError as exc:
                    self._failed = exc
                    raise
                found: dict[str, list[Resource]] = {}
                failures: list[ProviderError] = []
                for account in accounts:
                    try:
                        found[account] = self._list(account)
                    except ProviderError as exc:  # one account's failure must not hide the others
                        failures.append(exc)
                        self._gaps.append(Gap(self._cloud, "inventory", exc.one_line(), None, None, account, exc.hint))
                if failures and len(failures) == len(accounts):
                    self._gaps.clear()  # the error itself is reported
                    self._failed = failures[0]
                    raise failures[0]
                self._found = found
            return self._found

    def accounts(self) -> list[str]:
        return sorted(self.all())

    def default_regions(self) -> list[str]:
        """Every region (location) holding at least one resource."""
        return sorted({r.ref.region for rs in self.all().values() for r in rs})

    def resources(self, region: str) -> list[Resource]:
        return [r for rs in self.all().values() for r in rs if r.ref.region == region]

    def groups(self, region: str, list_groups: Callable[[str, list[Resource]], list[Group]]) -> list[Group]:
        """The scaling groups of ``region``, each account's listed once with its resources."""
        out: list[Group] = []
        for account, found in self.all().items():
            if account not in self._groups:
                self._groups[account] = list_groups(account, found)
            out += [g for g in self._groups[account] if g.ref.region == region]
        return out

    def pending_gaps(self) -> list[Gap]:
        """Gaps found outside a region's calls (an account that could not be listed); each reported once."""
        with self._lock:
            out, self._gaps = self._gaps, []
        return out


def usage_per_account(resources: Sequence[Resource], period: timedelta,
                      read: Callable[[str, list[Resource]], UsageResult]) -> UsageResult:
    """``read(account, its resources)`` for each account among ``resources``, the results joined."""
    parts: list[Usage] = []
    gaps: list[Gap] = []
    for account in sorted({r.ref.account for r in resources}):
        result = read(account, [r for r in resources if r.ref.account == account])
        parts.append(result.usage)
        gaps += result.gaps
    return UsageResult(Usage.concat(parts, period), tuple(gaps))


class ListedOnceProvider:
    """The read side a provider with an ``AccountInventory`` (``self._inventory``) serves straight from it."""

    _inventory: AccountInventory

    def default_regions(self) -> list[str]:
        """Every region (location) holding at least one instance: these clouds have no 'default region'."""
        return self._inventory.default_regions()

    def pending_gaps(self) -> list[Gap]:
        """Gaps found outside a region's calls (an account that could not be listed); each reported once."""
        return self._inventory.pending_gaps()

    def resources(self, region: str) -> list[Resource]:
        return self._inventory.resources(region)
