"""Findings on commitment-covered instances: said to strand the commitment, unless other usage absorbs it.

A stop, schedule, right-size or consolidation of an instance that billing shows covered by a
reserved instance, savings plan, committed use discount or reservation does not end the
commitment: it is still paid. Its dollars are already priced at the instance's effective
(amortized) rate (``Snapshot.price_for``); this module adds what the user must know before acting:
which commitments cover it, and whether other uncovered usage in the same family and region
(seen in the same billing exports) could take the commitment over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from providers.model import BillingData, ResourceBilling, Snapshot
from recommenders.commitment_usage import cloud_of_provider
from recommenders.commitments import pool_of
from recommenders.model import Kind, Recommendation

#: Kinds that reduce the hours an instance runs (and so can leave its commitment with nothing to cover).
REDUCING = frozenset({Kind.STOP, Kind.SCHEDULE, Kind.RIGHTSIZE, Kind.CONSOLIDATE})


def family(billed: ResourceBilling) -> str | None:
    """The commitment pool of a billed resource (AWS family, GCP series, Azure size): ``commitments.pool_of``."""
    cloud = cloud_of_provider(billed.provider)
    if not billed.instance_type or cloud is None:
        return None
    return pool_of(cloud, billed.instance_type)


def annotate(snapshot: Snapshot, recommendations: Sequence[Recommendation]) -> list[Recommendation]:
    billing = snapshot.billing
    if billing is None:
        return list(recommendations)
    out = []
    for rec in recommendations:
        billed = billing.for_resource(rec.ref.id) if rec.kind in REDUCING else None
        if billed is None or billed.committed_hours <= 0:
            out.append(rec)
            continue
        out.append(_annotated(rec, billed, billing))
    return out


def _annotated(rec: Recommendation, billed: ResourceBilling, billing: BillingData) -> Recommendation:
    absorbing = _uncovered_hours_nearby(billed, billing)
    covered_h = billed.committed_hours
    ids = list(billed.commitment_ids)
    if absorbing >= covered_h:
        note = (f"Covered {billed.covered_fraction:.0%} by a commitment; other uncovered {family(billed)} "
                f"usage in {billed.region} ({absorbing:.0f} h) can take it over.")
    else:
        note = (f"Strands a commitment: {billed.covered_fraction:.0%} of its hours are covered "
                f"({', '.join(ids) or 'commitment'}), still paid after this change; savings are at its effective rate.")
    evidence = {
        **rec.evidence,
        "commitment": {
            "covered_fraction": round(billed.covered_fraction, 4),
            "covered_hours": round(covered_h, 2),
            "usage_hours": round(billed.usage_hours, 2),
            "commitment_ids": ids,
            "effective_cost_usd": float(billed.effective_cost),
            "billed_cost_usd": float(billed.billed_cost),
            "list_cost_usd": float(billed.list_cost) if billed.list_cost is not None else None,
            "uncovered_hours_same_family_region": round(absorbing, 2),
            "strands_commitment": absorbing < covered_h,
            "note": note,
        },
    }
    return replace(rec, summary=f"{rec.summary} {note}", evidence=evidence)


def _uncovered_hours_nearby(billed: ResourceBilling, billing: BillingData) -> float:
    """Uncovered usage hours of other resources of the same family and region in the billing window."""
    fam = family(billed)
    if fam is None:
        return 0.0
    return sum(
        max(0.0, r.usage_hours - r.committed_hours)
        for r in billing.resources
        if r.resource_id != billed.resource_id and r.region == billed.region and family(r) == fam
    )
