"""The terminal renderer: a rich table of the report, plain text unless ``color`` is set.

Everything that came from a cloud or a recommender (names, ids, tags, summaries, reasons) goes
into ``rich.text.Text`` objects, which rich never parses for markup or emoji codes, so it prints
as typed. (``rich.markup.escape`` is not enough: it doubles a trailing backslash, so ``C:\\data\\``
would print as ``C:\\data\\\\``.) Highlighting is off as well.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from io import StringIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from providers.model import utc
from recommenders.model import Recommendation, Risk
from reports.model import AuditReport, short_id

_RISK_STYLE = {Risk.LOW: "green", Risk.MEDIUM: "yellow", Risk.HIGH: "red"}


def usd(value: Decimal) -> str:
    """``$1,234.56``; negative amounts as ``-$1,234.56``."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def timestamp(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%d %H:%M UTC")


def header_parts(report: AuditReport) -> list[str]:
    """The header's pieces as plain text (the caller escapes): window, clouds, regions, DEMO if demo."""
    parts = [
        f"{timestamp(report.window.start)} .. {timestamp(report.window.end)}",
        "clouds: " + (", ".join(report.clouds) or "-"),
        "regions: " + (", ".join(report.regions) or "-"),
    ]
    if report.demo:
        parts.append("DEMO")
    return parts


def summary_rows(report: AuditReport) -> list[tuple[str, str]]:
    """(label, value) pairs of the summary block, shared with the Markdown renderer."""
    s = report.summary
    spend = "not read" if s.gpu_spend_usd is None else usd(s.gpu_spend_usd)
    return [
        ("Instances", f"{s.instances:,} ({s.gpu_instances:,} with GPUs)"),
        ("GPU instances running", f"{s.gpu_instances_running:,}"),
        ("Analyzed", f"{s.analyzed:,} of {s.gpu_instances_running:,} running GPU instances"),
        ("Idle GPU-hours", f"{s.idle_gpu_hours:,.2f}"),
        ("Idle cost", usd(s.idle_usd)),
        ("GPU spend in window", spend),
        ("Potential savings", f"{usd(s.monthly_savings_usd)} / month"),
    ] + billing_rows(report) + kpi_rows(report)


def _pct(value: object) -> str:
    return "-" if value is None else f"{float(value):.0%}"  # type: ignore[arg-type]


def billing_rows(report: AuditReport) -> list[tuple[str, str]]:
    """The billing block (numbers only: file names stay in the JSON)."""
    b = report.summary.billing
    if b is None:
        return []
    rows = [("Billing exports", f"{b['rows']:,} rows from {len(b['sources'])} source(s), {b['bad_rows']:,} unreadable; "
                                f"billed {usd(Decimal(str(b['billed_cost_usd'])))}, "
                                f"effective {usd(Decimal(str(b['effective_cost_usd'])))}")]
    c = b.get("commitments")
    if c is not None:
        rows.append(("Commitments", f"coverage {_pct(c['coverage'])}, utilization {_pct(c['utilization'])}, "
                                    f"effective savings rate {_pct(c['effective_savings_rate'])}"))
    return rows


def kpi_rows(report: AuditReport) -> list[tuple[str, str]]:
    k = report.summary.kpis
    if k is None:
        return []
    total = k.total
    per_busy = "-" if total.usd_per_busy_gpu_hour is None else usd(total.usd_per_busy_gpu_hour)
    method = f"{k.energy_measured_instances} measured, {k.energy_estimated_instances} estimated"
    return [
        ("Cost per busy GPU-hour", f"{per_busy} ({total.busy_gpu_hours:,.1f} of {total.gpu_hours:,.1f} GPU-hours busy)"),
        ("GPU energy", f"{total.energy_kwh:,.1f} kWh, {total.co2e_kg:,.1f} kg CO2e ({method})"),
    ]


TEAM_HEADER = ("team", "instances", "GPU-h busy", "cost", "$/busy GPU-h", "idle cost", "kWh", "kg CO2e")


def team_rows(report: AuditReport) -> list[tuple[str, ...]]:
    """One row per team of the KPI block (team names came from tags: the caller escapes them)."""
    k = report.summary.kpis
    if k is None:
        return []
    return [
        (t.team, f"{t.instances}", f"{t.busy_gpu_hours:,.1f} / {t.gpu_hours:,.1f}", usd(t.cost_usd),
         "-" if t.usd_per_busy_gpu_hour is None else usd(t.usd_per_busy_gpu_hour), usd(t.idle_usd),
         f"{t.energy_kwh:,.1f}", f"{t.co2e_kg:,.1f}")
        for t in k.teams
    ]


def _console(width: int, color: bool) -> tuple[Console, StringIO]:
    out = StringIO()
    console = Console(
        file=out,
        width=width,
        height=25,  # with both set, rich ignores COLUMNS/LINES and TERM=dumb
        force_terminal=color,
        force_jupyter=False,
        force_interactive=False,
        legacy_windows=False,
        emoji=False,
        highlight=False,
        color_system="auto" if color else None,
    )
    return console, out


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)


#: Below this width the cloud, region and type columns fold into the resource cell.
COMPACT_BELOW = 100


def _resource_cell(rec: Recommendation, compact: bool) -> Text:
    lines = [Text(rec.name)] if rec.name else []
    shown = short_id(rec.ref.id, rec.name)
    if shown:
        lines.append(Text(shown, style="dim" if rec.name else ""))
    if compact:
        lines.append(Text(" · ".join((rec.ref.cloud.value, rec.ref.region, rec.instance_type or "-")), style="dim"))
    return Text("\n").join(lines)


def _recommendations_table(recs: tuple[Recommendation, ...], compact: bool) -> Table:
    table = _table("Recommendations")
    table.add_column("$/month", justify="right", no_wrap=True, style="bold")
    table.add_column("kind", no_wrap=True)
    if not compact:
        table.add_column("cloud", no_wrap=True)
        table.add_column("region", overflow="fold", min_width=6)
    table.add_column("resource", overflow="fold", min_width=12)
    if not compact:
        table.add_column("type", overflow="fold", min_width=6)
    table.add_column("conf.", justify="right", no_wrap=True)
    table.add_column("risk", no_wrap=True)
    table.add_column("summary", overflow="fold", min_width=12)
    for rec in recs:
        money, kind = Text(usd(rec.monthly_savings_usd)), Text(rec.kind.value)
        resource = _resource_cell(rec, compact)
        tail = (Text(f"{rec.confidence:.0%}"), Text(rec.risk.value, style=_RISK_STYLE[rec.risk]), Text(rec.summary))
        if compact:
            table.add_row(money, kind, resource, *tail)
        else:
            where = (Text(rec.ref.cloud.value), Text(rec.ref.region))
            table.add_row(money, kind, *where, resource, Text(rec.instance_type or "-"), *tail)
    return table


def _gaps_table(report: AuditReport) -> Table:
    table = _table("Gaps")
    table.add_column("cloud", no_wrap=True)
    table.add_column("region", overflow="fold", min_width=6)
    table.add_column("resource", overflow="fold", min_width=8)
    table.add_column("what", overflow="fold", min_width=6)
    table.add_column("reason", overflow="fold", min_width=12)
    table.add_column("hint", overflow="fold", min_width=10)
    for gap in report.gaps:
        cells = (gap.cloud.value, gap.region or "-", short_id(gap.resource_id) or "-", gap.what, gap.reason, gap.hint or "-")
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _teams_table(report: AuditReport) -> Table:
    table = _table(f"By {report.summary.kpis.tag_key if report.summary.kpis else 'team'}")
    for i, name in enumerate(TEAM_HEADER):
        table.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
    for row in team_rows(report):
        table.add_row(*(Text(cell) for cell in row))
    return table


def render_table(report: AuditReport, width: int = 120, color: bool = False) -> str:
    """The report for a terminal: header, summary, recommendations, gaps, and how to get JSON."""
    console, out = _console(width, color)
    console.print(Text("  ").join([Text("costagent audit", style="bold"), *map(Text, header_parts(report))]))
    console.print()
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column()
    for label, value in summary_rows(report):
        summary.add_row(Text(label), Text(value))
    console.print(summary)
    console.print()
    if team_rows(report):
        console.print(_teams_table(report))
        console.print()
    if report.recommendations:
        console.print(_recommendations_table(report.recommendations, compact=width < COMPACT_BELOW))
    else:
        console.print(Text("No recommendations for this window."))
    console.print()
    if report.gaps:
        console.print(_gaps_table(report))
    else:
        console.print(Text("No gaps reported."))
    console.print()
    console.print(Text("For machine-readable output, run again with --output json."))
    # rich pads cells to the column width; drop the trailing blanks so the text diffs cleanly.
    return "\n".join(line.rstrip(" ") for line in out.getvalue().split("\n"))
