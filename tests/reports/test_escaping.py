"""Cloud-supplied text prints as typed in the table and cannot inject anything into Markdown."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from reports.markdown import md_text, render_markdown
from reports.table import render_table
from tests.reports.sample import full_report, stop_recommendation

UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


@pytest.mark.parametrize("color", [False, True])
def test_table_shows_markup_literally(color: bool) -> None:
    text = render_table(full_report(), width=200, color=color)
    assert "train-[bold]x[/bold] | <script>alert(1)</script>" in text
    assert ":rocket:" in text  # emoji codes are not replaced
    assert "\U0001f680" not in text


@pytest.mark.parametrize("color", [False, True])
def test_table_shows_trailing_backslash_and_bracket_literally(color: bool) -> None:
    rec = replace(stop_recommendation(), name="a\\", summary="[red]not red[/red] \\[x]")
    report = replace(full_report(), recommendations=(rec,))
    text = render_table(report, width=200, color=color)
    assert re.search(r" a\\\s", text)
    assert "[red]not red[/red] \\[x]" in text


def test_markdown_escapes_cloud_text() -> None:
    md = render_markdown(full_report())
    assert "<script>" not in md
    assert "\\<script\\>" in md
    assert "\\[bold\\]x\\[/bold\\] \\| " in md
    assert "\\*dev\\*\\_box \\`x\\`" in md


def test_markdown_rows_keep_their_cells() -> None:
    """A `|` or a newline in cloud text must not add cells or rows."""
    md = render_markdown(full_report())
    rec_rows = [line for line in md.splitlines() if line.startswith("| $") and "$/month" not in line]
    gap_rows = [line for line in md.splitlines() if line.startswith(("| aws", "| gcp", "| azure"))]
    team_rows = [line for line in md.splitlines() if line.startswith(("| train", "| (untagged)"))]
    assert len(rec_rows) == 5 and len(gap_rows) == 2 and len(team_rows) == 2
    assert all(len(UNESCAPED_PIPE.findall(row)) == 10 for row in rec_rows)
    assert all(len(UNESCAPED_PIPE.findall(row)) == 9 for row in team_rows)
    assert all(len(UNESCAPED_PIPE.findall(row)) == 7 for row in gap_rows)
    assert "read on the subscription" in md


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a|b", "a\\|b"),
        ("line\r\nbreak\nand\rmore", "line break and more"),
        ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
        ("<img src=x>", "\\<img src=x\\>"),
        ("`code` *em* _em_", "\\`code\\` \\*em\\* \\_em\\_"),
        ("\\[x]", "\\\\\\[x\\]"),  # a backslash in the text cannot cancel our escape
        ("$5 and $6", "\\$5 and \\$6"),
        ("", "-"),
        (None, "-"),
    ],
)
def test_md_text(raw: str | None, escaped: str) -> None:
    assert md_text(raw) == escaped
