"""Grid carbon intensity per cloud region and data-centre PUE per cloud, for energy-to-carbon estimates.

The grid factors (kg CO2e per kWh of electricity, location-based) are in
``providers/data/carbon_factors.csv``, one row per (cloud, region), each naming its source and the
year of the electricity data where the source states it. The figures are those published in Cloud
Carbon Footprint's methodology (Appendix V; facts only, no code taken), which in turn cite EPA
eGRID2020 (US, per NERC region), the EEA (most of Europe) and carbonfootprint.com (elsewhere).
See providers/data/CARBON_SOURCES.md.

A region without a row has no factor: callers report that, never guess.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from providers.model import Cloud

_PUE_SOURCE = "Cloud Carbon Footprint methodology, 'Power Usage Effectiveness' (cloudcarbonfootprint.org/docs/methodology)"


@dataclass(frozen=True, slots=True)
class Pue:
    cloud: Cloud
    value: float
    source: str


#: Power usage effectiveness per cloud (facility energy / IT energy), as Cloud Carbon Footprint uses
#: them: AWS a conservative estimate from public information, GCP Google's published fleet PUE,
#: Azure Microsoft's trailing-twelve-month fleet figure.
PUE: dict[Cloud, Pue] = {
    Cloud.AWS: Pue(Cloud.AWS, 1.135, _PUE_SOURCE + ": AWS 1.135"),
    Cloud.GCP: Pue(Cloud.GCP, 1.1, _PUE_SOURCE + ": GCP 1.1"),
    Cloud.AZURE: Pue(Cloud.AZURE, 1.185, _PUE_SOURCE + ": Azure 1.185"),
}


@dataclass(frozen=True, slots=True)
class GridFactor:
    cloud: Cloud
    region: str
    kg_co2e_per_kwh: float
    source: str
    year: int | None  # the year of the electricity data, where the source says it

    def as_dict(self) -> dict[str, object]:
        return {"kg_co2e_per_kwh": self.kg_co2e_per_kwh, "source": self.source, "year": self.year}


@cache
def _factors() -> dict[tuple[Cloud, str], GridFactor]:
    text = (resources.files("providers") / "data" / "carbon_factors.csv").read_text(encoding="utf-8")
    table: dict[tuple[Cloud, str], GridFactor] = {}
    for lineno, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            factor = GridFactor(Cloud(row["cloud"]), row["region"], float(row["kg_co2e_per_kwh"]), row["source"],
                                int(row["year"]) if row["year"] else None)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"carbon_factors.csv:{lineno}: bad row ({exc})") from exc
        if not (0 <= factor.kg_co2e_per_kwh < 2) or not factor.source:
            raise ValueError(f"carbon_factors.csv:{lineno}: implausible factor or no source")
        key = (factor.cloud, factor.region)
        if key in table:
            raise ValueError(f"carbon_factors.csv:{lineno}: {factor.cloud}/{factor.region} listed twice")
        table[key] = factor
    return table


def grid_factor(cloud: Cloud | str, region: str) -> GridFactor | None:
    """The grid's kg CO2e per kWh for a cloud region, or None where no published factor is shipped."""
    return _factors().get((Cloud(cloud), region))


def pue(cloud: Cloud | str) -> Pue | None:
    return PUE.get(Cloud(cloud))


def regions(cloud: Cloud | str) -> list[str]:
    """The regions of ``cloud`` that have a factor."""
    return sorted(r for c, r in _factors() if c == Cloud(cloud))


def co2e_kg(kwh: float, cloud: Cloud | str, region: str) -> float | None:
    """kWh drawn by the hardware x the cloud's PUE x the region's grid factor; None without a factor."""
    factor, p = grid_factor(cloud, region), pue(cloud)
    if factor is None or p is None:
        return None
    return kwh * p.value * factor.kg_co2e_per_kwh


__all__ = ["PUE", "GridFactor", "Pue", "co2e_kg", "grid_factor", "pue", "regions"]
