"""The Markdown renderer: GitHub-flavoured Markdown for pull requests, issues and wikis.

Text that came from a cloud or a recommender goes through ``md_text`` so a tag value can
neither break a table row nor inject links, emphasis, code or HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reports.model import AuditReport, short_id
from reports.table import TEAM_HEADER, header_parts, summary_rows, team_rows, usd

_NEWLINES = re.compile(r"\r\n|\r|\n")
# The backslash too, so a backslash in the text cannot cancel one of ours (`\[x]` stays literal);
# and `$`, since GitHub renders $...$ as math.
_SPECIAL = re.compile(r"([\\`*_\[\]<>$])")


def md_text(value: str | None) -> str:
    """Escape ``value`` for a GFM table cell or list item; None and "" become ``-``."""
    if not value:
        return "-"
    text = _NEWLINES.sub(" ", value)
    text = _SPECIAL.sub(r"\\\1", text)
    return text.replace("|", r"\|")


def _resource(name: str | None, resource_id: str) -> str:
    """``name (id)``, the name alone when the id only repeats it, or the id alone when the resource has no name."""
    shown = short_id(resource_id, name)
    if not name:
        return md_text(shown or resource_id)
    return md_text(name) if not shown else f"{md_text(name)} ({md_text(shown)})"


def _table(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _recommendations(report: AuditReport) -> list[str]:
    if not report.recommendations:
        return ["No recommendations for this window."]
    rows = [
        (
            usd(rec.monthly_savings_usd),
            rec.kind.value,
            rec.ref.cloud.value,
            md_text(rec.ref.region),
            _resource(rec.name, rec.ref.id),
            md_text(rec.instance_type),
            f"{rec.confidence:.0%}",
            rec.risk.value,
            md_text(rec.summary),
        )
        for rec in report.recommendations
    ]
    header = ("$/month", "Kind", "Cloud", "Region", "Resource", "Type", "Confidence", "Risk", "Summary")
    align = ("---:", "---", "---", "---", "---", "---", "---:", "---", "---")
    return _table(header, align, rows)


def _gaps(report: AuditReport) -> list[str]:
    if not report.gaps:
        return ["No gaps reported."]
    rows = [
        (
            gap.cloud.value,
            md_text(gap.region),
            md_text(short_id(gap.resource_id)),
            md_text(gap.what),
            md_text(gap.reason),
            md_text(gap.hint),
        )
        for gap in report.gaps
    ]
    return _table(("Cloud", "Region", "Resource", "What", "Reason", "Hint"), ("---",) * 6, rows)


def render_markdown(report: AuditReport) -> str:
    """The report as GitHub-flavoured Markdown, ending in a newline."""
    header = [md_text(p) for p in header_parts(report)]
    if report.demo:
        header[-1] = "**DEMO**"
    lines = ["# costagent audit", "", " · ".join(header), "", "## Summary", ""]
    lines += [f"- {label}: {value}" for label, value in summary_rows(report)]  # our own numbers
    teams = team_rows(report)
    if teams and report.summary.kpis is not None:
        lines += ["", f"## By {md_text(report.summary.kpis.tag_key)}", ""]
        lines += _table(TEAM_HEADER, ("---",) + ("---:",) * (len(TEAM_HEADER) - 1),
                        [(md_text(row[0]), *row[1:]) for row in teams])
    lines += ["", "## Recommendations", ""]
    lines += _recommendations(report)
    lines += ["", "## Gaps", ""]
    lines += _gaps(report)
    lines += ["", "For machine-readable output, run again with `--output json`."]
    return "\n".join(lines) + "\n"
