"""Rendered reports compared byte for byte with tests/reports/golden/*.

Set COSTAGENT_UPDATE_GOLDEN=1 to rewrite the golden files from the current output (then review the diff).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from reports.json_report import render_json
from reports.markdown import render_markdown
from reports.model import AuditReport
from reports.table import render_table
from tests.reports.sample import empty_report, full_report

GOLDEN = Path(__file__).parent / "golden"

REPORTS: dict[str, Callable[[], AuditReport]] = {"full": full_report, "empty": empty_report}
RENDERERS: dict[str, Callable[[AuditReport], str]] = {
    "txt": render_table,
    "json": render_json,
    "md": render_markdown,
}


@pytest.mark.parametrize("ext", sorted(RENDERERS))
@pytest.mark.parametrize("name", sorted(REPORTS))
def test_matches_golden(name: str, ext: str) -> None:
    rendered = RENDERERS[ext](REPORTS[name]())
    path = GOLDEN / f"{name}.{ext}"
    if os.environ.get("COSTAGENT_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rendered.encode("utf-8"))
        return
    assert path.exists(), f"{path} missing: run with COSTAGENT_UPDATE_GOLDEN=1 to create it"
    assert rendered == path.read_bytes().decode("utf-8")


def test_table_ignores_terminal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = render_table(full_report())
    for var, value in {"COLUMNS": "40", "LINES": "5", "TERM": "dumb", "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}.items():
        monkeypatch.setenv(var, value)
    assert render_table(full_report()) == expected


@pytest.mark.parametrize("width", [80, 120, 160])
def test_table_fits_width(width: int) -> None:
    lines = render_table(full_report(), width=width).splitlines()
    assert max(len(line) for line in lines) <= width
    assert not any(line != line.rstrip(" ") for line in lines)


def test_table_color_uses_ansi_only_when_asked() -> None:
    assert "\x1b[" not in render_table(full_report())
    assert "\x1b[" in render_table(full_report(), color=True)
