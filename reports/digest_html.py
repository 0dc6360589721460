"""The digest as one self-contained HTML file, and as an email (plain text + HTML + inline PNG charts).

``render_html``: a single file with inline CSS and the charts as inline SVG; no script, no external URL (a
Content-Security-Policy meta tag forbids both, as a second line of defence). ``render_email``: the same
report for mail clients, which do not render SVG: the charts are PNG parts referenced as ``cid:`` images,
plus a plain-text part and a one-line subject (``reports.channels.build_email`` assembles the message).

Everything that came from a cloud (names, ids, tags, summaries, reasons, the audience) goes through
``html.escape`` on one line; our own numbers and labels are written as they are.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from providers.model import utc
from reports.digest import CHANGED, NEW, Digest, Finding
from reports.digest_charts import CHARTS, Chart, render_charts
from reports.model import short_id
from reports.table import usd

TOP_N = 25  # findings in the HTML file's table (None: all)
EMAIL_TOP_N = 10
_WHITESPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_STATUS = {NEW: "new", CHANGED: "changed"}
_NO_CHART = {
    "idle-by-day": "No idle GPU time recorded in this window.",
    "savings-by-kind": "No findings, so no savings by kind.",
    "savings-by-team": "No findings, so no savings by team.",
    "idle-heatmap": "No hour-of-week idle data in this window.",
}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data: cid:"
_CSS = """
body{margin:0;padding:24px;background:#f5f6f8;color:#1d2430;
 font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;background:#fff;padding:24px 32px;border-radius:8px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde1e7}
.about{color:#4a5566;margin:0 0 16px}.demo{background:#fff3cd;padding:2px 6px;border-radius:4px}
.totals{display:flex;flex-wrap:wrap;gap:12px;margin:0;padding:0}
.totals div{background:#eef3f9;border-radius:6px;padding:8px 14px;min-width:110px}
.totals dt{font-size:12px;color:#4a5566}.totals dd{margin:0;font-size:20px;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:16px}.charts figure{margin:0;flex:1 1 560px;max-width:800px}
.charts svg,.charts img{width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e3e6eb;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num,th.num{text-align:right;white-space:nowrap}
code{font:12px ui-monospace,Menlo,Consolas,monospace;overflow-wrap:break-word}
.status-new{color:#0b6b2e;font-weight:600}.status-changed{color:#8a5a00;font-weight:600}
.empty{color:#6b7585;font-style:italic}footer{margin-top:28px;color:#6b7585;font-size:12px}
""".strip()


@dataclass(frozen=True)
class EmailParts:
    """One digest email: ``html`` references each chart as ``cid:<id>``, ``images`` maps that id (without
    ``<>``) to the chart's PNG bytes."""

    subject: str
    text: str
    html: str
    images: dict[str, bytes]


# --- text -------------------------------------------------------------------------------------------------

def one_line(value: str | None) -> str:
    """Cloud text on one line: runs of whitespace and control characters become one space."""
    return _WHITESPACE.sub(" ", value or "").strip()


def h(value: str | None) -> str:
    """Cloud text escaped for HTML (text or a quoted attribute); None and "" become ``-``."""
    text = one_line(value)
    return html.escape(text, quote=True) if text else "-"


def _code(value: str | None) -> str:
    return f"<code>{h(value)}</code>" if value else "-"


def _iso(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resource(resource_id: str | None) -> str:
    if not resource_id:
        return "-"
    return f'<code title="{h(resource_id)}">{h(short_id(resource_id) or resource_id)}</code>'


def _counts(d: Digest) -> tuple[int, int]:
    return sum(f.status == NEW for f in d.findings), sum(f.status == CHANGED for f in d.findings)


# --- sections ---------------------------------------------------------------------------------------------

def _table(header: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]]) -> str:
    """``header``: (label, css class) pairs; ``rows``: cells already escaped, one class per column."""
    head = "".join(f'<th class="{cls}">{label}</th>' if cls else f"<th>{label}</th>" for label, cls in header)
    body = "\n".join("<tr>" + "".join(f'<td class="{cls}">{cell}</td>' if cls else f"<td>{cell}</td>"
                                      for cell, (_, cls) in zip(row, header)) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _header(d: Digest) -> str:
    new, changed = _counts(d)
    clouds = ", ".join(h(c) for c in d.clouds) or "-"
    demo = ' · <span class="demo">DEMO data</span>' if d.demo else ""
    totals = [("Monthly savings", usd(d.monthly_savings_usd)), ("Findings", f"{len(d.findings):,}"),
              ("New", f"{new:,}"), ("Changed", f"{changed:,}"), ("Applied", f"{len(d.applied):,}"),
              ("Due", f"{len(d.due):,}"), ("Unread", f"{len(d.unread):,}")]
    tiles = "".join(f"<div><dt>{label}</dt><dd>{value}</dd></div>" for label, value in totals)
    return (f"<header>\n<h1>costagent digest</h1>\n"
            f'<p class="about">For <strong>{h(d.audience)}</strong> · {_iso(d.window_start)} to '
            f"{_iso(d.window_end)} · clouds: {clouds} · generated {_iso(d.generated_at)}{demo}</p>\n"
            f'<dl class="totals">{tiles}</dl>\n</header>')


def _charts(charts: Mapping[str, Chart | None], embed: Callable[[Chart], str]) -> str:
    figures = []
    for name, title in CHARTS.items():
        chart = charts.get(name)
        body = embed(chart) if chart else f'<p class="empty">{_NO_CHART[name]}</p>'
        figures.append(f'<figure id="chart-{name}" aria-label="{title}">\n{body}\n</figure>')
    return '<section id="charts">\n<h2>Charts</h2>\n<div class="charts">\n' + "\n".join(figures) + "\n</div>\n</section>"


def _finding_row(rank: int, f: Finding) -> list[str]:
    status = _STATUS.get(f.status)
    return [f"{rank}", h(f.kind), h(f.cloud), _resource(f.resource_id), h(f.name), h(f.team), h(f.owner),
            usd(f.monthly_savings_usd), f"{f.confidence:.0%}", h(f.risk),
            f'<span class="status-{status}">{status}</span>' if status else "-", h(f.summary)]


def _findings(d: Digest, top_n: int | None) -> str:
    if not d.findings:
        return '<section id="findings">\n<h2>Top findings</h2>\n<p class="empty">No findings for this audience ' \
               'in this window.</p>\n</section>'
    shown = d.findings if top_n is None else d.findings[:top_n]
    header = [("#", "num"), ("Kind", ""), ("Cloud", ""), ("Resource", ""), ("Name", ""), ("Team", ""),
              ("Owner", ""), ("$/month", "num"), ("Confidence", "num"), ("Risk", ""), ("Status", ""), ("Summary", "")]
    table = _table(header, [_finding_row(rank, f) for rank, f in enumerate(shown, 1)])
    rest = len(d.findings) - len(shown)
    more = f'\n<p class="empty">…and {rest:,} more findings (all of them are in the CSV).</p>' if rest else ""
    title = f"Top {len(shown):,} of {len(d.findings):,} findings, by monthly savings"
    return f'<section id="findings">\n<h2>{title}</h2>\n{table}{more}\n</section>'


def _section(sid: str, title: str, empty: str, header: Sequence[tuple[str, str]],
             rows: Sequence[Sequence[str]]) -> str:
    body = _table(header, rows) if rows else f'<p class="empty">{empty}</p>'
    return f'<section id="{sid}">\n<h2>{title}</h2>\n{body}\n</section>'


def _rest(d: Digest) -> list[str]:
    applied = [[h(a.kind), h(a.cloud), _resource(a.resource_id), h(a.status), _iso(a.at), _code(a.actor),
                f"{h(a.before)} → {h(a.after)}" if a.before or a.after else "-"] for a in d.applied]
    due = [[h(x.kind), h(x.cloud), _resource(x.resource_id), _iso(x.act_after)] for x in d.due]
    unread = [[h(u.cloud), h(u.region), _resource(u.resource_id), h(u.what), h(u.reason), h(u.hint)]
              for u in d.unread]
    return [
        _section("applied", "Applied since the last digest", "Nothing applied since the last digest.",
                 _plain("Kind", "Cloud", "Resource", "Status", "At (UTC)", "By", "Change"), applied),
        _section("due", "Due (acts after its grace period)", "Nothing due.",
                 _plain("Kind", "Cloud", "Resource", "Acts after (UTC)"), due),
        _section("unread", "Could not read", "Everything could be read.",
                 _plain("Cloud", "Region", "Resource", "What", "Reason", "Fix"), unread),
    ]


def _plain(*labels: str) -> list[tuple[str, str]]:
    """Table header cells without a css class."""
    return [(label, "") for label in labels]


def _document(d: Digest, charts: Mapping[str, Chart | None], embed: Callable[[Chart], str], top_n: int | None) -> str:
    title = f"costagent digest · {h(d.audience)} · {d.window_start:%Y-%m-%d} to {d.window_end:%Y-%m-%d}"
    footer = f"<footer>costagent digest format {h(d.version)} · all times UTC · savings in USD per month</footer>"
    parts = [_header(d), _charts(charts, embed), _findings(d, top_n), *_rest(d), footer]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{'[DEMO] ' if d.demo else ''}{title}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(parts) + "\n</main>\n</body>\n</html>\n")


def render_html(digest: Digest, *, top_n: int | None = TOP_N,
                charts: Mapping[str, Chart | None] | None = None) -> str:
    """The digest as one self-contained HTML document (charts inline as SVG); ``top_n=None``: every finding.
    ``charts``: ``render_charts(digest)`` when the caller has it already (e.g. for the email too)."""
    return _document(digest, render_charts(digest) if charts is None else charts, lambda chart: chart.svg, top_n)


# --- email ------------------------------------------------------------------------------------------------

def content_id(chart: Chart) -> str:
    """The Content-ID (without ``<>``) of a chart's PNG part."""
    return f"{chart.name}@costagent"


def _img(chart: Chart) -> str:
    return (f'<img src="cid:{content_id(chart)}" width="{chart.width_px}" height="{chart.height_px}" '
            f'alt="{chart.title}">')


def subject(digest: Digest) -> str:
    """One line: savings, audience, findings and new ones (a tag in the audience cannot add a header)."""
    d = digest
    new, _ = _counts(d)
    text = (f"costagent digest: {usd(d.monthly_savings_usd)}/month in savings for {one_line(d.audience) or '-'} "
            f"({len(d.findings):,} findings, {new:,} new)")
    return ("[DEMO] " if d.demo else "") + text


def _text_finding(rank: int, f: Finding) -> list[str]:
    status = f" [{_STATUS[f.status]}]" if f.status in _STATUS else ""
    who = "".join((f" · team {one_line(f.team)}" if f.team else "", f" · owner {one_line(f.owner)}" if f.owner else ""))
    resource = one_line(short_id(f.resource_id) or f.resource_id)
    name = f" ({one_line(f.name)})" if f.name else ""
    first = f"{rank:>3}. {usd(f.monthly_savings_usd)}/month · {one_line(f.kind)}{status} · {one_line(f.cloud)} "
    return [f"{first}{resource}{name}",
            f"     confidence {f.confidence:.0%} · risk {one_line(f.risk)}{who}",
            f"     {one_line(f.summary)}"]


def render_text(digest: Digest, *, top_n: int | None = EMAIL_TOP_N) -> str:
    """The plain-text part of the email."""
    d = digest
    new, changed = _counts(d)
    lines = [("[DEMO] " if d.demo else "") + f"costagent digest for {one_line(d.audience) or '-'}",
             f"{_iso(d.window_start)} to {_iso(d.window_end)} · clouds: {', '.join(one_line(c) for c in d.clouds) or '-'}",
             "", f"Monthly savings: {usd(d.monthly_savings_usd)}",
             f"Findings: {len(d.findings):,} ({new:,} new, {changed:,} changed) · applied {len(d.applied):,} · due "
             + f"{len(d.due):,} · unread {len(d.unread):,}", ""]
    if not d.findings:
        lines.append("No findings for this audience in this window.")
    else:
        shown = d.findings if top_n is None else d.findings[:top_n]
        lines.append(f"Top {len(shown):,} of {len(d.findings):,} findings")
        for rank, f in enumerate(shown, 1):
            lines += _text_finding(rank, f)
        if len(d.findings) > len(shown):
            lines.append(f"…and {len(d.findings) - len(shown):,} more findings in the full report.")
    if d.applied:
        lines += ["", "Applied since the last digest"]
        lines += [f" - {one_line(a.kind)} {one_line(short_id(a.resource_id) or a.resource_id)} ({one_line(a.cloud)}): "
                  f"{one_line(a.status)} at {_iso(a.at)} by {one_line(a.actor)}"
                  + (f" ({one_line(a.before) or '-'} → {one_line(a.after) or '-'})" if a.before or a.after else "")
                  for a in d.applied]
    if d.due:
        lines += ["", "Due (acts after its grace period)"]
        lines += [f" - {one_line(x.kind)} {one_line(short_id(x.resource_id) or x.resource_id)} ({one_line(x.cloud)}) "
                  f"after {_iso(x.act_after)}" for x in d.due]
    if d.unread:
        lines += ["", "Could not read"]
        for u in d.unread:
            where = " ".join(one_line(x) for x in (u.cloud, u.region, short_id(u.resource_id) or u.resource_id) if x)
            fix = f" Fix: {one_line(u.hint)}" if u.hint else ""
            lines.append(f" - {where}: {one_line(u.what)}: {one_line(u.reason)}.{fix}")
    return "\n".join(lines) + "\n"


def render_email(digest: Digest, *, top_n: int | None = EMAIL_TOP_N,
                 charts: Mapping[str, Chart | None] | None = None) -> EmailParts:
    """The digest as an email: subject, plain text, HTML with ``cid:`` chart images, and the PNGs by id.
    ``charts``: ``render_charts(digest)`` when the caller has it already."""
    charts = render_charts(digest) if charts is None else charts
    images = {content_id(c): c.png for c in charts.values() if c is not None}
    return EmailParts(subject=subject(digest), text=render_text(digest, top_n=top_n),
                      html=_document(digest, charts, _img, top_n), images=images)


__all__ = [
    "EMAIL_TOP_N",
    "TOP_N",
    "EmailParts",
    "content_id",
    "h",
    "one_line",
    "render_email",
    "render_html",
    "render_text",
    "subject",
]
