"""The digest as GitHub-flavoured Markdown (for a pull request, an issue, a wiki page or a file channel).

Text from the clouds (names, ids, tags, summaries, reasons) goes through ``md_cell``: one line, every
character that Markdown or HTML could read as markup backslash-escaped (``\\ ` * _ [ ] < > $ & ~``), and
``|`` escaped so a tag value cannot add a table cell. The charts' series appear as small tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from providers.model import utc
from reports.digest import CHANGED, NEW, Digest
from reports.model import short_id
from reports.table import usd

TOP_N = 25  # findings in the table; the rest are counted (all of them are in the CSV)

_WHITESPACE = re.compile(r"[\s\x00-\x1f\x7f\x85\u2028\u2029]+")
# The backslash first among equals, so a backslash in the text cannot cancel one of ours; `&` so an entity
# stays text; `$` (math on GitHub) and `~` (strikethrough) as well. Every one is a CommonMark escapable.
_SPECIAL = re.compile(r"([\\`*_\[\]<>$&~|])")
_STATUS = {NEW: "new", CHANGED: "changed"}


def md_cell(value: str | None) -> str:
    """``value`` escaped for a GFM table cell or list item, on one line; None and "" become ``-``."""
    if not value:
        return "-"
    text = _WHITESPACE.sub(" ", value).strip()
    return _SPECIAL.sub(r"\\\1", text) or "-"


def _iso(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _resource(resource_id: str) -> str:
    return md_cell(short_id(resource_id) or resource_id)


def _findings(d: Digest, top_n: int | None) -> list[str]:
    if not d.findings:
        return ["No findings for this audience in this window."]
    shown = d.findings if top_n is None else d.findings[:top_n]
    rows = [(f"{rank}", md_cell(f.kind), md_cell(f.cloud), _resource(f.resource_id), md_cell(f.name),
             md_cell(f.team), md_cell(f.owner), usd(f.monthly_savings_usd), f"{f.confidence:.0%}", md_cell(f.risk),
             _STATUS.get(f.status, "-"), md_cell(f.summary))
            for rank, f in enumerate(shown, 1)]
    header = ("#", "Kind", "Cloud", "Resource", "Name", "Team", "Owner", "$/month", "Confidence", "Risk", "Status",
              "Summary")
    align = ("---:", "---", "---", "---", "---", "---", "---", "---:", "---:", "---", "---", "---")
    lines = _table(header, align, rows)
    rest = len(d.findings) - len(shown)
    if rest:
        lines += ["", f"…and {rest:,} more findings (all of them are in the CSV)."]
    return lines


def _applied(d: Digest) -> list[str]:
    if not d.applied:
        return ["Nothing applied since the last digest."]
    rows = [(md_cell(a.kind), md_cell(a.cloud), _resource(a.resource_id), md_cell(a.status), _iso(a.at),
             md_cell(a.actor), f"{md_cell(a.before)} → {md_cell(a.after)}" if a.before or a.after else "-")
            for a in d.applied]
    return _table(("Kind", "Cloud", "Resource", "Status", "At", "By", "Change"), ("---",) * 7, rows)


def _due(d: Digest) -> list[str]:
    if not d.due:
        return ["Nothing due."]
    rows = [(md_cell(x.kind), md_cell(x.cloud), _resource(x.resource_id), _iso(x.act_after)) for x in d.due]
    return _table(("Kind", "Cloud", "Resource", "Acts after"), ("---",) * 4, rows)


def _unread(d: Digest) -> list[str]:
    if not d.unread:
        return ["Everything could be read."]
    rows = [(md_cell(u.cloud), md_cell(u.region), _resource(u.resource_id) if u.resource_id else "-",
             md_cell(u.what), md_cell(u.reason), md_cell(u.hint)) for u in d.unread]
    return _table(("Cloud", "Region", "Resource", "What", "Reason", "Fix"), ("---",) * 6, rows)


def _series(d: Digest) -> list[str]:
    lines: list[str] = []
    if d.idle_by_day:
        lines += ["", "## Idle per day", ""]
        lines += _table(("Day (UTC)", "Idle GPU-hours", "Idle cost"), ("---", "---:", "---:"),
                        [(f"{x.day:%Y-%m-%d}", f"{x.idle_gpu_hours:,.1f}", usd(x.idle_usd))
                         for x in sorted(d.idle_by_day, key=lambda x: x.day)])
    for attribute, title in (("kind", "Kind"), ("team", "Team")):
        savings = d.savings_by(attribute)
        if savings:
            lines += ["", f"## Savings by {attribute}", ""]
            lines += _table((title, "$/month"), ("---", "---:"), [(md_cell(k), usd(v)) for k, v in savings.items()])
    return lines


def render_markdown(digest: Digest, *, top_n: int | None = TOP_N) -> str:
    """The digest as GitHub-flavoured Markdown, ending in a newline (``top_n=None``: every finding)."""
    d = digest
    new = sum(f.status == NEW for f in d.findings)
    changed = sum(f.status == CHANGED for f in d.findings)
    about = [f"For {md_cell(d.audience)}", f"{_iso(d.window_start)} to {_iso(d.window_end)}",
             "clouds: " + (", ".join(md_cell(c) for c in d.clouds) or "-"), f"generated {_iso(d.generated_at)}"]
    if d.demo:
        about.append("**DEMO data**")
    lines = ["# costagent digest", "", " · ".join(about), "", "## Summary", "",
             f"- Monthly savings: {usd(d.monthly_savings_usd)}",
             f"- Findings: {len(d.findings):,} ({new:,} new, {changed:,} changed)",
             f"- Applied since the last digest: {len(d.applied):,}",
             f"- Due: {len(d.due):,}",
             f"- Could not read: {len(d.unread):,}",
             "", "## Top findings", ""]
    lines += _findings(d, top_n)
    lines += ["", "## Applied since the last digest", ""] + _applied(d)
    lines += ["", "## Due (acts after its grace period)", ""] + _due(d)
    lines += ["", "## Could not read", ""] + _unread(d)
    lines += _series(d)
    return "\n".join(lines) + "\n"


__all__ = ["TOP_N", "md_cell", "render_markdown"]
