"""``costagent prices``: one row per (cloud, region, instance type) with every rate and its source.

JSON (``render_prices_json``) is the contract for scripts; the table is for people. Money stays
Decimal until it is printed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from io import StringIO
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from providers.model import CommitmentRate, PriceQuote


@dataclass(frozen=True)
class PriceRow:
    cloud: str
    region: str
    instance_type: str
    gpu_model: str
    gpu_count: int
    gpu_memory_gib: float
    vcpu: int
    memory_gib: float
    on_demand: PriceQuote | None
    spot: PriceQuote | None
    commitments: tuple[CommitmentRate, ...] = ()


def _quote(q: PriceQuote | None) -> dict[str, Any] | None:
    if q is None:
        return None
    out: dict[str, Any] = {"hourly_usd": str(q.hourly_usd), "source": q.source, "as_of": q.as_of.date().isoformat()}
    if q.interruption is not None:
        out["interruption"] = q.interruption
    return out


def row_dict(row: PriceRow) -> dict[str, Any]:
    return {
        "cloud": row.cloud,
        "region": row.region,
        "instance_type": row.instance_type,
        "gpu": {"model": row.gpu_model, "count": row.gpu_count, "memory_gib": row.gpu_memory_gib},
        "vcpu": row.vcpu,
        "memory_gib": row.memory_gib,
        "on_demand": _quote(row.on_demand),
        "spot": _quote(row.spot),
        "commitments": [
            {"instrument": c.instrument.value, "term_years": c.term_years, "hourly_usd": str(c.hourly_usd),
             "discount_pct": _discount(c.hourly_usd, row.on_demand), "source": c.source,
             "as_of": c.as_of.date().isoformat()}
            for c in row.commitments
        ],
    }


def _discount(rate: Decimal, on_demand: PriceQuote | None) -> float | None:
    if on_demand is None or on_demand.hourly_usd <= 0:
        return None
    return round(float((1 - rate / on_demand.hourly_usd) * 100), 1)


def render_prices_json(rows: Sequence[PriceRow]) -> str:
    """Prices as JSON; money as decimal strings (exact, as published)."""
    return json.dumps({"prices": [row_dict(r) for r in rows]}, indent=2) + "\n"


def render_prices_table(rows: Sequence[PriceRow], width: int = 160) -> str:
    """A table of rates; each figure's source and date is a numbered note under it."""
    notes: dict[str, int] = {}

    def ref(source: str, as_of: Any) -> str:
        key = f"{source} ({as_of.date()})"
        return f"[{notes.setdefault(key, len(notes) + 1)}]"

    table = Table(box=box.SIMPLE_HEAVY, show_lines=False, highlight=False)
    for title in ("cloud", "region", "type", "GPU", "vCPU", "RAM GiB", "on-demand $/h", "spot $/h",
                  "commitments $/h (discount)"):
        table.add_column(title, overflow="fold")
    for row in rows:
        od, spot = row.on_demand, row.spot
        od_text = "-" if od is None else f"{od.hourly_usd} {ref(od.source, od.as_of)}"
        spot_text = "-" if spot is None else f"{spot.hourly_usd} {ref(spot.source, spot.as_of)}" + \
            (f" interruptions {spot.interruption}" if spot.interruption else "")
        commits = "\n".join(f"{c.instrument.value} {c.term_years}y {c.hourly_usd} ({_discount(c.hourly_usd, od)}%) "
                            f"{ref(c.source, c.as_of)}" for c in row.commitments) or "-"
        table.add_row(*(Text(str(v)) for v in (
            row.cloud, row.region, row.instance_type, f"{row.gpu_count}x {row.gpu_model} {row.gpu_memory_gib:g} GiB",
            row.vcpu, f"{row.memory_gib:g}", od_text, spot_text, commits)))
    buffer = StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False, emoji=False)
    console.print(table)
    for text, number in notes.items():
        console.print(Text(f"[{number}] {text}"))
    return buffer.getvalue()
