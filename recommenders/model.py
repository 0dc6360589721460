"""What recommenders produce: one ``Recommendation`` per proposed change or piece of advice."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any

from providers.model import Action, ResourceRef


class Kind(enum.StrEnum):
    STOP = "stop"
    SCHEDULE = "schedule"
    RIGHTSIZE = "rightsize"
    SPOT = "spot"
    COMMITMENT = "commitment"
    AUTOSCALE = "autoscale"
    CONSOLIDATE = "consolidate"  # advice: pack mostly idle single-GPU workloads onto fewer instances


class Risk(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


CENT = Decimal("0.01")


def recommendation_id(recommender: str, kind: Kind, ref: ResourceRef) -> str:
    """Stable across runs: the same finding on the same resource keeps its id.

    Numbers (savings, streaks) are left out on purpose so a changing estimate
    does not look like a new finding.
    """
    digest = hashlib.sha256(f"{recommender}|{kind}|{ref.key}".encode()).hexdigest()
    return f"{recommender}-{digest[:12]}"


@dataclass(frozen=True)
class Recommendation:
    recommender: str
    kind: Kind
    ref: ResourceRef
    instance_type: str | None
    monthly_savings_usd: Decimal
    confidence: float  # 0..1
    risk: Risk
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)  # JSON-able plain Python values only
    action: Action | None = None  # None: advice only
    name: str | None = None  # the resource's display name, if it has one

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} outside 0..1")
        if self.monthly_savings_usd < 0:
            raise ValueError(f"negative savings {self.monthly_savings_usd}: a recommendation must save money")
        object.__setattr__(self, "monthly_savings_usd", self.monthly_savings_usd.quantize(CENT, ROUND_HALF_UP))
        object.__setattr__(self, "evidence", MappingProxyType(dict(self.evidence)))

    @property
    def id(self) -> str:
        return recommendation_id(self.recommender, self.kind, self.ref)
