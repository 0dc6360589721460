"""The digest's document renderers (HTML, email, Markdown, CSV) and its charts: golden files, determinism,
and every hostile string from the cloud escaped in every format.

Golden files: tests/reports/golden/digest-*.{md,csv,html} (COSTAGENT_UPDATE_GOLDEN=1 rewrites them). In the
HTML golden files each inline chart is replaced by a marker, so a Matplotlib upgrade that moves a path
coordinate does not fail the HTML test; the charts are tested on their own (byte-stable, well-formed, sizes).
"""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import io
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.image import imread

from reports.channels import build_email
from reports.digest import Digest, route
from reports.digest_charts import CHARTS, Chart, chart_label, render_charts, savings_by_chart
from reports.digest_csv import COLUMNS, csv_text, render_csv
from reports.digest_html import EmailParts, h, render_email, render_html
from reports.digest_markdown import md_cell, render_markdown
from tests.reports.digest_sample import HOSTILE_NAME, HOSTILE_TEAM, empty_digest, full_digest

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[2]
SVG_NS = "{http://www.w3.org/2000/svg}"
_CHART = re.compile(r'<svg id="([a-z-]+)".*?</svg>', re.DOTALL)
# Every element the HTML renderer writes itself, and every element of Matplotlib's inline SVG.
HTML_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "p", "strong", "span",
             "dl", "div", "dt", "dd", "section", "figure", "table", "thead", "tbody", "tr", "th", "td", "code",
             "footer", "img"}
SVG_TAGS = {"svg", "title", "defs", "style", "g", "path", "text", "clippath", "rect", "use", "image"}


@pytest.fixture(scope="module")
def full() -> Digest:
    return full_digest()


@pytest.fixture(scope="module")
def full_charts(full: Digest) -> dict[str, Chart | None]:
    return render_charts(full)


@pytest.fixture(scope="module")
def full_html(full: Digest, full_charts: dict[str, Chart | None]) -> str:
    return render_html(full, charts=full_charts)


@pytest.fixture(scope="module")
def full_email(full: Digest, full_charts: dict[str, Chart | None]) -> EmailParts:
    return render_email(full, charts=full_charts)


def test_html_draws_byte_identical_charts_again(full: Digest, full_html: str) -> None:
    assert render_html(full) == full_html  # charts drawn afresh: same SVG bytes


def _charts_as_markers(html: str) -> str:
    return _CHART.sub(lambda m: f"<!-- chart: {m[1]} -->", html)


RENDERERS: dict[str, Callable[[Digest], str]] = {
    "md": render_markdown,
    "csv": render_csv,
    "html": lambda d: _charts_as_markers(render_html(d)),
}


@pytest.mark.parametrize("ext", sorted(RENDERERS))
@pytest.mark.parametrize("name, make", [("full", full_digest), ("empty", empty_digest)])
def test_matches_golden(name: str, make: Callable[[], Digest], ext: str) -> None:
    rendered = RENDERERS[ext](make())
    path = GOLDEN / f"digest-{name}.{ext}"
    if os.environ.get("COSTAGENT_UPDATE_GOLDEN") == "1":
        path.write_bytes(rendered.encode("utf-8"))
        return
    assert path.exists(), f"{path} missing: run with COSTAGENT_UPDATE_GOLDEN=1 to create it"
    assert rendered == path.read_bytes().decode("utf-8")


# --- HTML -------------------------------------------------------------------------------------------------

class _Page(HTMLParser):
    """Every start tag, every attribute and all text (with character references resolved)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(k, v or "") for k, v in attrs]
        self.ids += [v for k, v in attrs if k == "id" and v]

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def test_html_hostile_text_is_text_not_markup(full_html: str) -> None:
    page = _parse(full_html)
    assert "script" not in page.tags
    assert set(page.tags) <= HTML_TAGS | SVG_TAGS, set(page.tags) - HTML_TAGS - SVG_TAGS
    text = "".join(page.text)
    for hostile in (HOSTILE_NAME, HOSTILE_TEAM, "no-agent-<l4>"):
        assert hostile in text  # shown exactly as the cloud holds it
        assert hostile not in full_html  # and never written raw


def test_html_needs_no_network_and_no_script(full_html: str) -> None:
    page = _parse(full_html)
    for name, value in page.attrs:
        assert not name.startswith("on"), f"event handler attribute {name}"
        if name in ("src", "href", "xlink:href", "action", "srcset"):
            assert value.startswith(("#", "data:image/png;base64,")), f"{name}={value[:60]}"
    assert "<link" not in full_html and "@import" not in full_html and "url(http" not in full_html
    assert "default-src 'none'" in full_html  # the CSP meta: no script, no fetch, even if escaping failed


def test_html_audience_from_a_tag_is_escaped(full: Digest) -> None:
    routed = route(full, by="team")[f"team:{HOSTILE_TEAM}"]
    html = render_html(routed, charts={})
    assert f"team:{HOSTILE_TEAM}" not in html
    assert html.count(f"team:{h(HOSTILE_TEAM)}") == 2  # <title> and the header
    assert "<b>" not in _CHART.sub("", html)


def test_html_chart_ids_are_unique_and_references_resolve(full_html: str) -> None:
    page = _parse(full_html)
    assert len(page.ids) == len(set(page.ids))
    assert {f"chart-{name}" for name in CHARTS} | set(CHARTS) <= set(page.ids)
    references = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', full_html))
    assert references and references <= set(page.ids)


def test_html_shows_header_totals_and_sections(full_html: str) -> None:
    text = " ".join(" ".join(_parse(full_html).text).split())
    for expected in ("For everyone", "2026-11-16T09:00:00Z to 2026-11-23T09:00:00Z", "clouds: aws, gcp, azure",
                     "Monthly savings $16,768.27", "Findings 4", "New 2", "Changed 1", "Applied 1", "Due 1",
                     "Unread 1", "install the Ops Agent", "Top 4 of 4 findings"):
        assert expected in text, expected
    assert full_html.count("<svg ") == 4


def test_html_top_n_counts_the_rest(full: Digest) -> None:
    html = render_html(full, top_n=2, charts={})
    assert "Top 2 of 4 findings" in html and "…and 2 more findings" in html


def test_empty_digest_renders_everywhere() -> None:
    d = empty_digest()
    html = render_html(d)
    assert "<svg" not in html and "No findings, so no savings by kind." in html
    mail = render_email(d)
    assert mail.images == {} and 'src="cid:' not in mail.html
    assert render_markdown(d).endswith("Everything could be read.\n")
    assert render_csv(d) == ",".join(COLUMNS) + "\n"


# --- email ------------------------------------------------------------------------------------------------

def test_email_references_each_png_by_content_id(full_email: EmailParts) -> None:
    referenced = set(re.findall(r'src="cid:([^"]+)"', full_email.html))
    assert referenced == set(full_email.images) and len(referenced) == 4
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in full_email.images.values())
    assert "<svg" not in full_email.html
    assert "script" not in _parse(full_email.html).tags


def test_email_text_and_subject(full_email: EmailParts) -> None:
    assert full_email.subject == "costagent digest: $16,768.27/month in savings for everyone (4 findings, 2 new)"
    assert HOSTILE_NAME in full_email.text  # plain text: shown as typed, nothing to interpret
    assert "  1. $10,162.40/month · stop [new] · aws i-00000000000000001" in full_email.text
    assert "Fix: install the Ops Agent" in full_email.text


def test_email_subject_stays_one_line(full: Digest) -> None:
    parts = render_email(replace(full, audience="team:a\r\nBcc: x@evil.example", findings=()), charts={})
    assert "\n" not in parts.subject and "\r" not in parts.subject
    assert "team:a Bcc: x@evil.example" in parts.subject


def test_email_builds_into_a_message_with_inline_images(full_email: EmailParts) -> None:
    raw = build_email(full_email, "costagent@example.com", ["ops@example.com"]).as_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    images = {part["Content-ID"].strip("<>"): part.get_content() for part in msg.walk()
              if part.get_content_type() == "image/png"}
    assert images == full_email.images


# --- Markdown ---------------------------------------------------------------------------------------------

def test_markdown_escapes_hostile_text(full: Digest) -> None:
    md = render_markdown(full)
    assert r"\<script\>alert(" in md and "<script>" not in md
    assert r"\<https://evil.example\|click\>" in md and r"\*bold\*" in md
    assert r"ml \& \<b\>vision\</b\>" in md and "<b>" not in md
    row = next(line for line in md.splitlines() if line.startswith("| 1 |"))
    assert len(re.findall(r"(?<!\\)\|", row)) == 13  # 12 cells: the pipe in the name cannot add one


@given(st.text(max_size=40))
@settings(max_examples=200, deadline=None)
def test_md_cell_leaves_no_markup_unescaped(value: str) -> None:
    cell = md_cell(value)
    assert "\n" not in cell and "\r" not in cell
    unescaped = re.sub(r"\\.", "", cell)  # drop every escaped pair
    assert not set(unescaped) & set("\\`*_[]<>$&~|")


# --- CSV --------------------------------------------------------------------------------------------------

def test_csv_round_trips_hostile_text_and_plain_decimals(full: Digest) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(full))))
    assert [r["id"] for r in rows] == [f.id for f in full.findings]
    first = rows[0]
    assert first["name"] == HOSTILE_NAME and first["team"] == HOSTILE_TEAM
    assert first["monthly_savings_usd"] == "10162.40" and first["confidence"] == "0.9"
    assert first["actionable"] == "true" and rows[2]["owner"] == ""


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_neutralises_formulas(full: Digest, start: str) -> None:
    hostile = f"{start}HYPERLINK(\"https://evil.example\",\"x\")"
    finding = replace(full.findings[0], name=hostile, team=hostile, summary=hostile, owner=hostile)
    row = next(csv.DictReader(io.StringIO(render_csv(replace(full, findings=(finding,))))))
    for column in ("name", "team", "summary", "owner"):
        assert row[column] == "'" + hostile


def test_csv_savings_never_in_exponent_notation(full: Digest) -> None:
    finding = replace(full.findings[0], monthly_savings_usd=Decimal("1E+3"))
    row = next(csv.DictReader(io.StringIO(render_csv(replace(full, findings=(finding,))))))
    assert row["monthly_savings_usd"] == "1000"


@given(st.text(max_size=20))
def test_csv_text_never_starts_a_formula(value: str) -> None:
    assert not csv_text(value).startswith(("=", "+", "-", "@", "\t", "\r"))
    assert csv_text(value).removeprefix("'") == value or csv_text(value) == value


# --- charts -----------------------------------------------------------------------------------------------

def _digests(charts: dict[str, Chart | None]) -> str:
    return " ".join(f"{n}:{hashlib.sha256(c.svg.encode() + c.png).hexdigest()[:16]}"
                    for n, c in charts.items() if c is not None)


def test_charts_are_byte_stable_across_processes(full_charts: dict[str, Chart | None]) -> None:
    code = ("import hashlib; from reports.digest_charts import render_charts;"
            "from tests.reports.digest_sample import full_digest;"
            "print(' '.join(f'{n}:{hashlib.sha256(c.svg.encode() + c.png).hexdigest()[:16]}'"
            " for n, c in render_charts(full_digest()).items() if c is not None))")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "SOURCE_DATE_EPOCH": "0"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()
    assert out == _digests(full_charts)


@pytest.mark.parametrize("name", list(CHARTS))
def test_chart_svg_is_well_formed_and_png_has_the_fixed_size(full_charts: dict[str, Chart | None],
                                                              name: str) -> None:
    chart = full_charts[name]
    assert chart is not None
    root = ET.fromstring(chart.svg)
    assert root.tag == f"{SVG_NS}svg" and root.get("id") == name and root.get("viewBox")
    assert "<metadata" not in chart.svg and "<?xml" not in chart.svg
    image = imread(io.BytesIO(chart.png), format="png")
    assert image.shape[:2] == (chart.height_px, chart.width_px)
    assert len({tuple(p) for p in image[::7, ::7].reshape(-1, image.shape[2]).tolist()}) > 10  # not blank


def _svg_texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG_NS}text")]


def test_chart_team_labels_are_escaped_text(full_charts: dict[str, Chart | None]) -> None:
    chart = full_charts["savings-by-team"]
    assert chart is not None
    assert "ml &amp; &lt;b&gt;vision&lt;/b&gt;" in chart.svg
    assert HOSTILE_TEAM in _svg_texts(chart.svg)
    assert not list(ET.fromstring(chart.svg).iter("b")) and not list(ET.fromstring(chart.svg).iter(f"{SVG_NS}b"))


def test_chart_labels_are_not_mathtext_and_control_characters_cannot_break_the_xml(full: Digest) -> None:
    teams = ("$x^2$ costs $5", "nul\x00 esc\x1b[31m bell\x07", "rtl\u202eevil", "a" * 80)
    findings = tuple(replace(f, team=t, id=f"{f.id}-{i}") for i, (f, t) in enumerate(zip(full.findings, teams)))
    chart = savings_by_chart(replace(full, findings=findings), "team")
    assert chart is not None
    texts = _svg_texts(chart.svg)  # parses: no raw control character reached the XML
    assert "$x^2$ costs $5" in texts
    assert "nul\ufffd esc\ufffd[31m bell\ufffd" in texts and "rtl\ufffdevil" in texts
    assert "a" * 31 + "…" in texts


def test_savings_chart_sums_the_tail_into_other(full: Digest) -> None:
    findings = tuple(replace(full.findings[0], id=f"x{i}", team=f"team-{i:02d}") for i in range(14))
    chart = savings_by_chart(replace(full, findings=findings), "team")
    assert chart is not None
    labels = [t for t in _svg_texts(chart.svg) if t.startswith(("team-", "other"))]
    assert len(labels) == 10 and labels[-1] == "other (5)"


def test_empty_series_give_no_chart(full: Digest) -> None:
    assert all(chart is None for chart in render_charts(empty_digest()).values())
    only_findings = render_charts(replace(full, idle_by_day=(), idle_heatmap=()))
    assert only_findings["idle-by-day"] is None and only_findings["idle-heatmap"] is None
    assert only_findings["savings-by-kind"] is not None


def test_chart_label_is_one_safe_line() -> None:
    assert chart_label(None) == "(none)"
    assert chart_label("a\n\tb") == "a b"
    assert chart_label("x" * 40, limit=10) == "x" * 9 + "…"


@given(st.text(max_size=30))
@settings(max_examples=200)
def test_html_escape_round_trips(value: str) -> None:
    page = _parse(f"<p>{h(value)}</p><p title=\"{h(value)}\">x</p>")
    assert page.tags == ["p", "p"]
    assert page.attrs == [("title", "".join(page.text)[:-1])]
