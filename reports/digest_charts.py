"""The digest's charts, each as an inline SVG element (for HTML) and PNG bytes (for email, whose clients do
not render SVG): idle GPU-hours and idle dollars per day, monthly savings by kind and by team, and the
hour-of-week idle heat map.

Deterministic: every chart is drawn from Matplotlib's default style plus our fixed settings (size, DPI,
font, a fixed ``svg.hashsalt`` per chart, no date or creator metadata), so the same digest gives the same
bytes on every run. Figures are built with the object API and the Agg canvas, never pyplot, so rendering
neither needs nor changes a global backend.

Cloud text (team names, kinds) is drawn as plain text: mathtext is off (a ``$`` stays a ``$``), control
and format characters become U+FFFD (XML cannot carry most of them, and a bidi override could disguise a
label), long labels are shortened, and Matplotlib's SVG writer escapes ``& < >``. Each chart's element ids
carry the chart's name, so several charts inline in one HTML page never share an id.

An empty series gives no chart (None), never an exception.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from reports.digest import Digest

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.2, 100  # every chart: 800 x 320 px as PNG, 576 x 230.4 pt as SVG
HEATMAP_HEIGHT_IN = 3.0
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_BARS = 10  # bars in a savings chart; the rest are summed into one "other" bar
MAX_LABEL = 32  # characters of a cloud label on an axis
BAR, LINE, HEAT = "#4878a8", "#c0504d", "Blues"

#: Chart name -> title; the order the HTML and email show them in.
CHARTS: dict[str, str] = {
    "idle-by-day": "Idle GPU-hours and idle cost per day",
    "savings-by-kind": "Monthly savings by kind",
    "savings-by-team": "Monthly savings by team",
    "idle-heatmap": "Idle GPU-hours by hour of the week (UTC)",
}

_RC: dict[str, Any] = {
    "svg.fonttype": "none",  # text as <text> elements: small, selectable, escaped by the SVG writer
    "font.family": "DejaVu Sans",  # bundled with Matplotlib, so the metrics are the same everywhere
    "font.size": 9,
    "text.parse_math": False,  # "$5 $10" is text, not mathtext
    "text.usetex": False,
    "axes.unicode_minus": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.facecolor": "white",
    "savefig.bbox": None,  # the figure's own fixed size, never a content-dependent tight box
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_PNG_METADATA = {"Software": None}
_PROLOG = re.compile(r"\A.*?(?=<svg[\s>])", re.DOTALL)
# An id or an id reference inside a tag (text content cannot hold "<", so tags are found exactly).
_TAG = re.compile(r"<[^<>]*>")
_ID_ATTR = re.compile(r'(\sid=")([^"]+)(")')
_ID_REF = re.compile(r'(url\(#|href="#)([^)"]+)')


@dataclass(frozen=True)
class Chart:
    """One rendered chart: ``svg`` is an ``<svg>`` element (no XML prolog, ready to inline in HTML; also a
    well-formed XML document on its own), ``png`` the same chart as PNG bytes."""

    name: str
    title: str
    svg: str
    png: bytes
    width_px: int
    height_px: int


# --- text -------------------------------------------------------------------------------------------------

def chart_label(value: str | None, limit: int = MAX_LABEL) -> str:
    """Cloud text as a safe one-line axis label: whitespace runs become one space, other control / format /
    unassigned characters U+FFFD, and text longer than ``limit`` ends in an ellipsis."""
    if not value:
        return "(none)"
    chars = []
    for ch in value:
        if ch.isspace():
            chars.append(" ")
        elif unicodedata.category(ch)[0] == "C":
            chars.append("\ufffd")
        else:
            chars.append(ch)
    text = " ".join("".join(chars).split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


def _usd_tick(value: float, _pos: object = None) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.0f}"


def _usd(value: Decimal) -> str:
    return f"${value:,.0f}" if value >= 0 else f"-${-value:,.0f}"


# --- rendering --------------------------------------------------------------------------------------------

def _scoped_ids(svg: str, prefix: str) -> str:
    """Prefix every element id (and every reference to one) with ``prefix``."""
    def tag(match: re.Match[str]) -> str:
        text = _ID_ATTR.sub(lambda m: f"{m[1]}{prefix}-{m[2]}{m[3]}", match.group())
        return _ID_REF.sub(lambda m: f"{m[1]}{prefix}-{m[2]}", text)
    return _TAG.sub(tag, svg)


def _render(name: str, height_in: float, draw: Callable[[Figure], None]) -> Chart:
    """Draw one figure with ``draw`` under the fixed settings and save it as SVG and PNG."""
    title = CHARTS[name]
    with mpl.rc_context(), warnings.catch_warnings():
        mpl.rcdefaults()  # Matplotlib's own defaults, whatever a matplotlibrc or style says
        mpl.rcParams.update(_RC)
        mpl.rcParams["svg.hashsalt"] = f"costagent-{name}"
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")  # e.g. an emoji in a team name
        fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig)
        fig.suptitle(title, fontsize=11, fontweight="bold")
        svg_out, png_out = io.StringIO(), io.BytesIO()
        fig.savefig(svg_out, format="svg", metadata=_SVG_METADATA)
        fig.savefig(png_out, format="png", metadata=_PNG_METADATA)
    svg = _scoped_ids(_PROLOG.sub("", svg_out.getvalue(), count=1), name)
    root_end = svg.index(">") + 1  # our own title: no metadata block (its namespaces are URLs)
    svg = (svg[:root_end].replace("<svg ", f'<svg id="{name}" role="img" aria-label="{title}" ', 1)
           + f"\n <title>{title}</title>" + svg[root_end:])
    return Chart(name, title, svg, png_out.getvalue(), round(WIDTH_IN * DPI), round(height_in * DPI))


def idle_by_day_chart(digest: Digest) -> Chart | None:
    """Bars: idle GPU-hours per day; a line on a second axis: idle dollars per day. None without days."""
    days = sorted(digest.idle_by_day, key=lambda d: d.day)
    if not days:
        return None

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        x = list(range(len(days)))
        ax.bar(x, [d.idle_gpu_hours for d in days], color=BAR, width=0.6, label="idle GPU-hours")
        ax.set_ylabel("idle GPU-hours")
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xticks(x, [f"{DAYS[d.day.weekday()]}\n{d.day:%m-%d}" for d in days])
        if len(days) > 14:  # keep about 14 labels
            step = -(-len(days) // 14)
            for i, label in enumerate(ax.get_xticklabels()):
                label.set_visible(i % step == 0)
        dollars = ax.twinx()
        dollars.plot(x, [float(d.idle_usd) for d in days], color=LINE, marker="o", markersize=4, linewidth=2,
                     label="idle cost")
        dollars.set_ylim(bottom=0)
        dollars.spines["right"].set_visible(True)
        dollars.yaxis.set_major_formatter(FuncFormatter(_usd_tick))
        dollars.yaxis.set_major_locator(MaxNLocator(nbins=5))
        dollars.set_ylabel("idle cost (USD)")
        handles = ax.get_legend_handles_labels()[0] + dollars.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper left", frameon=False, ncols=2)
        ax.set_ylim(top=ax.get_ylim()[1] * 1.15)  # room for the legend
        dollars.set_ylim(top=dollars.get_ylim()[1] * 1.15)

    return _render("idle-by-day", HEIGHT_IN, draw)


def _bars(values: Mapping[str, Decimal]) -> list[tuple[str, Decimal]]:
    items = list(values.items())
    if len(items) <= MAX_BARS:
        return items
    rest = items[MAX_BARS - 1:]
    return items[:MAX_BARS - 1] + [(f"other ({len(rest)})", sum((v for _, v in rest), Decimal(0)))]


def savings_by_chart(digest: Digest, attribute: str) -> Chart | None:
    """Horizontal bars of monthly savings by ``kind`` or ``team``, largest on top (at most ``MAX_BARS``, the
    rest summed into "other (n)"). None without findings."""
    if attribute not in ("kind", "team"):
        raise ValueError(f"savings by {attribute!r}: expected 'kind' or 'team'")
    bars = _bars(digest.savings_by(attribute))
    if not bars:
        return None

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        y = list(range(len(bars)))
        values = [float(v) for _, v in bars]
        rects = ax.barh(y, values, color=BAR, height=0.6)
        ax.set_yticks(y, [chart_label(label) for label, _ in bars])
        ax.invert_yaxis()  # largest first, on top
        ax.xaxis.set_major_formatter(FuncFormatter(_usd_tick))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xlim(0, max(max(values), 1.0) * 1.18)  # room for the value labels
        ax.set_xlabel("monthly savings (USD)")
        ax.bar_label(rects, labels=[_usd(v) for _, v in bars], padding=3, fontsize=8)

    return _render(f"savings-by-{attribute}", HEIGHT_IN, draw)


def idle_heatmap_chart(digest: Digest) -> Chart | None:
    """7 rows (Mon..Sun) x 24 columns (UTC hours) of idle GPU-hours; None without a heat map."""
    values = digest.idle_heatmap
    if not values:
        return None

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        grid = [list(values[day * 24:(day + 1) * 24]) for day in range(7)]
        mesh = ax.pcolormesh(grid, cmap=HEAT, vmin=0, vmax=max(max(values), 1e-9), edgecolors="white",
                             linewidth=0.5)
        ax.set_yticks([i + 0.5 for i in range(7)], DAYS)
        ax.set_xticks([h + 0.5 for h in range(0, 24, 2)], [f"{h:02d}" for h in range(0, 24, 2)])
        ax.invert_yaxis()  # Monday on top
        ax.set_xlabel("hour of day (UTC)")
        ax.tick_params(length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        bar = fig.colorbar(mesh, ax=ax, pad=0.01, aspect=15)
        bar.set_label("idle GPU-hours")
        bar.outline.set_visible(False)

    return _render("idle-heatmap", HEATMAP_HEIGHT_IN, draw)


def render_charts(digest: Digest) -> dict[str, Chart | None]:
    """Every chart of ``CHARTS``, in order; None where its series is empty."""
    return {
        "idle-by-day": idle_by_day_chart(digest),
        "savings-by-kind": savings_by_chart(digest, "kind"),
        "savings-by-team": savings_by_chart(digest, "team"),
        "idle-heatmap": idle_heatmap_chart(digest),
    }


__all__ = [
    "CHARTS",
    "DPI",
    "HEATMAP_HEIGHT_IN",
    "HEIGHT_IN",
    "MAX_BARS",
    "WIDTH_IN",
    "Chart",
    "chart_label",
    "idle_by_day_chart",
    "idle_heatmap_chart",
    "render_charts",
    "savings_by_chart",
]
